import { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';

/** Polls until `probe` answers something other than undefined. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const PENDING_ACTIVITY_STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/** Whether the worker process `pid` polls the main task queue (its identity is pid@host). */
export async function isPolling(client: Client, namespace: string, pid: number | undefined): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: TASK_QUEUES.main } });
  return (response.pollers ?? []).some((poller) => poller.identity?.startsWith(`${pid}@`));
}

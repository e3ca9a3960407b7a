import { WorkflowFailedError, WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { utxoReconcileWorkflow, utxoSyncWorkflow } from '../../workflows/pool/maintenance';
import {
  poolProgressQuery,
  type PoolOperationProgress,
  type PoolTrigger,
  type ReconcileReport,
  type SweepInput,
  type SweepReport,
  type SyncReport,
  type TopUpInput,
  type TopUpReport,
} from '../../workflows/pool/shared';
import type { utxoSweepWorkflow } from '../../workflows/pool/sweep';
import type { utxoTopUpWorkflow } from '../../workflows/pool/topUp';
import { WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { RECONCILE_WORKFLOW_ID, sweepWorkflowId, syncWorkflowId, topUpWorkflowId } from './ids';

export type PoolOperation = 'top-up' | 'sweep' | 'sync' | 'reconcile';

// A pool operation's id is reused by later runs, but never while one is running: that is the lock.
const reusableWhenClosed = { workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE } as const;

export function startTopUp(client: Client, fundingKeyIdentifier: string, input: TopUpInput, starts?: StartCounter): Promise<LaunchResult> {
  return startOnce<typeof utxoTopUpWorkflow>(
    client,
    'utxoTopUpWorkflow',
    {
      ...reusableWhenClosed,
      workflowId: topUpWorkflowId(fundingKeyIdentifier),
      taskQueue: TASK_QUEUES.main,
      args: [input],
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'utxo-topup' }],
    },
    starts,
  );
}

export function startSweep(client: Client, input: SweepInput, starts?: StartCounter): Promise<LaunchResult> {
  return startOnce<typeof utxoSweepWorkflow>(
    client,
    'utxoSweepWorkflow',
    {
      ...reusableWhenClosed,
      workflowId: sweepWorkflowId(input.changeAddress),
      taskQueue: TASK_QUEUES.main,
      args: [input],
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'utxo-sweep' }],
    },
    starts,
  );
}

export function startSync(
  client: Client,
  fundingKeyIdentifier: string,
  requestedBy: PoolTrigger,
  starts?: StartCounter,
): Promise<LaunchResult> {
  return startOnce<typeof utxoSyncWorkflow>(
    client,
    'utxoSyncWorkflow',
    {
      ...reusableWhenClosed,
      workflowId: syncWorkflowId(fundingKeyIdentifier),
      taskQueue: TASK_QUEUES.main,
      args: [{ requestedBy }],
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'utxo-sync' }],
    },
    starts,
  );
}

export function startReconcile(client: Client): Promise<LaunchResult> {
  return startOnce<typeof utxoReconcileWorkflow>(client, 'utxoReconcileWorkflow', {
    ...reusableWhenClosed,
    workflowId: RECONCILE_WORKFLOW_ID,
    taskQueue: TASK_QUEUES.main,
    typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'utxo-reconcile' }],
  });
}

/** Ids the pool status route and CLI may read; anything else is not a pool operation. */
export const POOL_OPERATION_ID_PATTERN = new RegExp(
  `^(?:(?:utxo-topup-|utxo-sync-|sweep-)[A-Za-z0-9._:-]{1,80}|${RECONCILE_WORKFLOW_ID})$`,
);

export function isPoolOperationWorkflowId(workflowId: string): boolean {
  return POOL_OPERATION_ID_PATTERN.test(workflowId);
}

export type PoolOperationResult = TopUpReport | SweepReport | SyncReport | ReconcileReport;

export type PoolOperationStatus =
  | { state: 'running'; workflowId: string; runId: string; progress: PoolOperationProgress | null }
  | { state: 'completed'; workflowId: string; runId: string; result: PoolOperationResult }
  | { state: 'failed'; workflowId: string; runId: string; status: string; reason: string; failureType?: string }
  | { state: 'not_found'; workflowId: string };

/** The latest (or the given) run of a pool operation: live progress while it runs, the report or the failure after. */
export async function getPoolOperationStatus(client: Client, workflowId: string, runId?: string): Promise<PoolOperationStatus> {
  const handle = client.workflow.getHandle(workflowId, runId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { state: 'not_found', workflowId };
    throw err;
  }
  const ids = { workflowId, runId: description.runId };
  switch (description.status.name) {
    case 'RUNNING':
      // A run that has not processed its first task yet has no query handler.
      return { state: 'running', ...ids, progress: await handle.query(poolProgressQuery).catch(() => null) };
    case 'COMPLETED':
      return { state: 'completed', ...ids, result: (await handle.result()) as PoolOperationResult };
    default:
      try {
        await handle.result();
      } catch (err) {
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        const failureType = cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
        return {
          state: 'failed',
          ...ids,
          status: description.status.name.toLowerCase(),
          reason: cause?.message ?? (err as Error).message,
          ...(failureType && { failureType }),
        };
      }
      return { state: 'failed', ...ids, status: description.status.name.toLowerCase(), reason: description.status.name.toLowerCase() };
  }
}

/** Waits for the run to close, calling `onProgress` while it runs. */
export async function waitForPoolOperation(
  client: Client,
  workflowId: string,
  runId: string,
  options: { pollMs?: number; timeoutMs?: number; onProgress?: (progress: PoolOperationProgress | null) => void } = {},
): Promise<Exclude<PoolOperationStatus, { state: 'running' }>> {
  const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
  for (;;) {
    const status = await getPoolOperationStatus(client, workflowId, runId);
    if (status.state !== 'running') return status;
    options.onProgress?.(status.progress);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${workflowId}`);
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1_000));
  }
}

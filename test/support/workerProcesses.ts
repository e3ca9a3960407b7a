import { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import path from 'node:path';
import { freePort, startRedis } from '../../ops/dev-stack/services';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { testEnvironment, type TestDeps } from './stack';
import { testEnv } from './testEnv';
import type { TrackedProcess } from './processes';

export interface WaitOptions {
  intervalMs?: number;
  /** Treat a probe that throws (a process not listening yet) as "not yet" instead of failing at once. */
  ignoreErrors?: boolean;
  /** What to add to the timeout error, such as the last lines of the processes under test. */
  context?: () => string;
}

/** Polls until `probe` answers something other than undefined. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  { intervalMs = 50, ignoreErrors = false, context }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = ignoreErrors ? await probe().catch(() => undefined) : await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${context ? `\n${context()}` : ''}`);
}

export const PENDING_ACTIVITY_STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/** Whether the worker process `pid` polls the task queue (the main one by default; its identity is pid@host). */
export async function isPolling(
  client: Client,
  namespace: string,
  pid: number | undefined,
  taskQueue: string = TASK_QUEUES.main,
): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue } });
  return (response.pollers ?? []).some((poller) => poller.identity?.startsWith(`${pid}@`));
}

/**
 * Waits until the worker process polls its task queue. It fails at once if the process exits, and either failure
 * carries the process's last output, so a worker that cannot start says why.
 */
export async function untilPolling(
  client: Client,
  namespace: string,
  worker: TrackedProcess,
  what = 'the worker to poll',
  timeoutMs = 90_000,
  taskQueue: string = TASK_QUEUES.main,
): Promise<void> {
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void worker.exited.then((e) => (exit = e));
  const report = () => `\n--- worker output (last lines)\n${worker.output()}`;
  await waitFor(
    what,
    async () => {
      if (exit) throw new Error(`the worker exited (code ${exit.code}, signal ${exit.signal}) while waiting for ${what}${report()}`);
      return (await isPolling(client, namespace, worker.child.pid, taskQueue)) ? true : undefined;
    },
    timeoutMs,
    { intervalMs: 100, context: report },
  );
}

/**
 * A Redis of the test's own, which it may freeze (SIGSTOP) to hold a worker's Redis probe in flight, and the
 * environment of a real `workers/main.ts` process that uses it with the test stack's MongoDB and Temporal.
 */
export async function privateRedisForWorkers(deps: TestDeps, label: string) {
  const port = await freePort();
  const redis = await startRedis({
    bin: testEnv('redisServer'),
    port,
    logFile: path.join(testEnv('scratchDir'), 'logs', `${label}-redis-${port}.log`),
  });
  const workerEnv = async (overrides: Record<string, string> = {}) =>
    testEnvironment({
      MONGODB_URI: deps.config.mongo.uri,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      WORKER_METRICS_PORT: String(await freePort()),
      WORKFLOW_BUNDLE_PATH: testEnv('workflowBundle'),
      SYSTEM_CHECK_EVERY: 'off',
      ...overrides,
    });
  return { redis, workerEnv };
}

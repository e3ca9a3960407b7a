import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { createActivities } from '../../activities';
import type { EmailActivities } from '../../activities/email/delivery';
import { testEnv } from './testEnv';

/** Every activity a workflow may call: the main task queue's and the email worker's, as the real factories type them. */
export type AllActivities = ReturnType<typeof createActivities> & EmailActivities;
export type ActivityName = keyof AllActivities;

/** Mocked activities: each is a jest mock of its real signature, so a test cannot drift from the activity it stands for. */
export type MockedActivities<K extends ActivityName> = { [P in K]: jest.MockedFunction<AllActivities[P]> };

/**
 * Wraps plain async functions, typed by the real activity interfaces, in jest mocks. An unknown name or a wrong
 * signature is a compile error.
 */
export function mockActivities<K extends ActivityName>(implementations: Pick<AllActivities, K>): MockedActivities<K> {
  return Object.fromEntries(
    Object.entries(implementations).map(([name, implementation]) => [name, jest.fn(implementation as (...args: unknown[]) => unknown)]),
  ) as unknown as MockedActivities<K>;
}

/**
 * Runs `body` while a worker on a fresh task queue serves the bundled workflows with these activities; the worker
 * shuts down when `body` settles (a worker runs once, so every run gets its own). Workflows still open then are
 * terminated: their timers would otherwise fire later on a task queue nobody serves, and the workflow task they
 * schedule holds the server's clock still for the tests that follow.
 *
 * On the time-skipping server only one caller at a time may wait for a result (each wait unlocks the clock and
 * locks it again after; concurrent waits unbalance that), so `body` awaits results one after another.
 */
async function terminateOpenWorkflows(env: TestWorkflowEnvironment): Promise<void> {
  const namespace = env.namespace ?? 'default';
  const { executions } = await env.connection.workflowService.listOpenWorkflowExecutions({ namespace, maximumPageSize: 1000 });
  await Promise.all(
    executions.map(({ execution }) =>
      env.client.workflow
        .getHandle(execution!.workflowId!, execution!.runId!)
        .terminate('the test is over')
        .catch(() => undefined),
    ),
  );
}

export async function withWorker<R>(
  env: TestWorkflowEnvironment,
  activities: Partial<AllActivities>,
  body: (taskQueue: string) => Promise<R>,
): Promise<R> {
  const taskQueue = `quick-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: { codePath: testEnv('workflowBundle') },
    activities,
    // Workflows run in this thread's V8 sandbox instead of a worker thread: creating a worker for every run then
    // takes milliseconds instead of most of a second. Only the deadlock detector is off, which logic tests do not need.
    debugMode: true,
  });
  return worker.runUntil(async () => {
    try {
      return await body(taskQueue);
    } finally {
      await terminateOpenWorkflows(env);
    }
  });
}

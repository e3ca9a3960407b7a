import { Client, Connection } from '@temporalio/client';
import { jestWorkerId, testEnv } from './testEnv';

/**
 * Each Jest worker owns one Temporal namespace and runs its files one after another. What a file leaves running
 * there (the long-running chain follower, an anchor batcher waiting for records, a pool schedule) would go on in the
 * next file, against that file's database and chain simulator, with the earlier file's settings: every file starts
 * from a namespace with no running workflow and no schedule.
 */
beforeAll(async () => {
  const connection = await Connection.connect({ address: testEnv('temporalAddress') });
  try {
    const client = new Client({ connection, namespace: `test-${jestWorkerId()}` });
    for await (const schedule of client.schedule.list()) {
      await client.schedule
        .getHandle(schedule.scheduleId)
        .delete()
        .catch(() => undefined);
    }
    for await (const execution of client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
      await client.workflow
        .getHandle(execution.workflowId, execution.runId)
        .terminate('a new test file starts in this namespace')
        .catch(() => undefined);
    }
  } finally {
    await connection.close();
  }
}, 60_000);

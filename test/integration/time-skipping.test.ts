import { type TestWorkflowEnvironment } from '@temporalio/testing';
import { createMainWorker } from '../../workers/mainWorker';
import type { SystemCheckReport } from '../../workflows/system/shared';
import { activityDeps, connectTestDeps, type TestDeps } from '../support/stack';
import { testEnv } from '../support/testEnv';
import { startTimeSkippingEnv } from '../support/timeSkipping';

/**
 * The Java time-skipping test server, resolved from Maven by the provisioning step and launched through its
 * wrapper as the SDK's `existing-path`. Timer-heavy workflows (confirmation waits, grace periods) test on it.
 */
describe('time-skipping test environment', () => {
  let env: TestWorkflowEnvironment;
  let deps: TestDeps;

  beforeAll(async () => {
    deps = await connectTestDeps('worker');
    env = await startTimeSkippingEnv();
  }, 60_000);

  afterAll(async () => {
    await env?.teardown();
    await deps?.close();
  });

  it('starts the Maven-resolved server within the SDK deadline and skips a day of virtual time at once', async () => {
    const before = await env.currentTimeMs();
    const wallStarted = Date.now();
    await env.sleep('1 day');
    expect((await env.currentTimeMs()) - before).toBeGreaterThanOrEqual(24 * 3600 * 1000);
    expect(Date.now() - wallStarted).toBeLessThan(20_000);
  });

  it('runs the production worker and workflow against it', async () => {
    const worker = await createMainWorker({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      deps: activityDeps(deps),
      workflowBundlePath: testEnv('workflowBundle'),
      taskQueue: 'time-skipping',
      shutdownGraceMs: 1_000,
    });
    const report = await worker.runUntil(
      env.client.workflow.execute('systemCheckWorkflow', {
        workflowId: 'ts-check',
        taskQueue: 'time-skipping',
        args: [{ checkId: 'ts-check', requestedBy: 'test' }],
      }) as Promise<SystemCheckReport>,
    );
    expect(report.status).toBe('ok');
  });
});

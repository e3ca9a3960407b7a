import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig } from '../../../src/config';
import { workerDeploymentOptions } from '../../../workers/versioning';
import { REPO_ROOT } from '../../support/processes';
import { testEnvironment } from '../../support/stack';
import { testEnv } from '../../support/testEnv';

const run = promisify(execFile);
const PINNED = temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_PINNED;

/**
 * A deploy of new workflow code with Worker Deployments, as ops/worker-deployment.sh does it on the real CLI: a
 * workflow started on release 1 finishes on release-1 code after release 2 (incompatible) becomes current, and new
 * workflows start on release 2. The release workers get their version the way workers/main.ts does: from config.
 */
describe('safe deploy of workflow code (Worker Deployments)', () => {
  const deploymentName = `patchproof-test-${randomBytes(3).toString('hex')}`;
  const taskQueue = `versioning-${deploymentName}`;
  let env: Record<string, string>;
  let connection: NativeConnection;
  let client: Client;
  const running: { worker: Worker; done: Promise<void> }[] = [];

  beforeAll(async () => {
    env = testEnvironment({ WORKER_DEPLOYMENT_NAME: deploymentName });
    const config = loadConfig(env);
    connection = await NativeConnection.connect({ address: config.temporal.address });
    client = new Client({
      connection: await Connection.connect({ address: config.temporal.address }),
      namespace: config.temporal.namespace,
    });
  });

  afterAll(async () => {
    for (const { worker, done } of running) {
      worker.shutdown();
      await done.catch(() => undefined);
    }
    await connection.close();
    await client.connection.close();
  });

  /** Starts a worker of release `release` (fixtures/<release>) with the version config a deploy gives it. */
  async function startRelease(release: 'v1' | 'v2'): Promise<void> {
    const config = loadConfig({ ...env, WORKER_BUILD_ID: release });
    const worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue,
      workflowsPath: require.resolve(`./fixtures/${release}/workflows`),
      ...workerDeploymentOptions(config.worker.versioning),
    });
    running.push({ worker, done: worker.run() });
  }

  const deployment = (...args: string[]) =>
    run(path.join(REPO_ROOT, 'ops/worker-deployment.sh'), args, {
      env: {
        PATH: process.env.PATH ?? '',
        TEMPORAL_CLI: testEnv('temporalCli'),
        TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS!,
        TEMPORAL_NAMESPACE: env.TEMPORAL_NAMESPACE!,
        WORKER_DEPLOYMENT_NAME: deploymentName,
      },
    });

  it('runs a workflow started on the old release to completion on old code while new ones start on the new release', async () => {
    await startRelease('v1');
    await deployment('promote', 'v1');
    const old = await client.workflow.start('releaseProbeWorkflow', { taskQueue, workflowId: `${deploymentName}-old` });
    await waitForFirstTask(old.workflowId);

    // The deploy: release 2's workers start beside release 1's, get a share of new workflows, then all of them.
    await startRelease('v2');
    await deployment('ramp', 'v2', '50');
    expect((await deployment('status')).stdout).toMatch(/RampingVersionPercentage\s+50/);
    await deployment('promote', 'v2');
    const fresh = await client.workflow.start('releaseProbeWorkflow', { taskQueue, workflowId: `${deploymentName}-new` });
    await waitForFirstTask(fresh.workflowId);

    // Release 1 still has a pinned workflow open: it drains, and retiring it is refused.
    const drain = await deployment('drain-status', 'v1').catch((err: { code: number; stdout: string }) => err);
    expect(drain).toMatchObject({ code: 1, stdout: `${deploymentName}/v1: draining\n` });
    await expect(deployment('retire', 'v1')).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('not drained') });

    await old.signal('finish');
    await fresh.signal('finish');
    expect(await old.result()).toBe('release-1');
    expect(await fresh.result()).toBe('release-2');
    const versionOf = async (workflowId: string) => {
      const info = (await client.workflow.getHandle(workflowId).describe()).raw.workflowExecutionInfo?.versioningInfo;
      return { behavior: info?.behavior, buildId: info?.deploymentVersion?.buildId };
    };
    expect(await versionOf(old.workflowId)).toEqual({ behavior: PINNED, buildId: 'v1' });
    expect(await versionOf(fresh.workflowId)).toEqual({ behavior: PINNED, buildId: 'v2' });
  });

  /** The first workflow task completed: the run is bound to the version whose worker took it. */
  async function waitForFirstTask(workflowId: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      if (history.events!.some((e) => e.workflowTaskCompletedEventAttributes)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${workflowId}: no workflow task completed`);
  }
});

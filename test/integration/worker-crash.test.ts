import type { ChildProcess } from 'node:child_process';
import type { RunningService } from '../../ops/dev-stack/services';
import { systemCheckModel } from '../../src/db/models/systemCheck';
import { systemCheckWorkflowId } from '../../src/system/ids';
import { startSystemCheck } from '../../src/system/launch';
import type { SystemCheckReport } from '../../workflows/system/shared';
import { spawnTracked } from '../support/processes';
import { PENDING_ACTIVITY_STARTED, privateRedisForWorkers, untilPolling, waitFor } from '../support/workerProcesses';
import { connectTestDeps, type TestDeps } from '../support/stack';

/**
 * The production worker entry point (workers/main.ts) in its own process, SIGKILLed while an activity of a check
 * is running; a second worker process finishes the same run. Exactly one run, one report.
 */
describe('worker killed mid-flight', () => {
  let deps: TestDeps;
  let redis: RunningService | undefined;
  const workers: ChildProcess[] = [];

  beforeAll(async () => {
    deps = await connectTestDeps('test');
  });

  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    if (redis) process.kill(redis.pid, 'SIGCONT');
    await redis?.stop();
    await deps.close();
  });

  it('completes the check exactly once after the first worker dies', async () => {
    const { redis: privateRedis, workerEnv: envFor } = await privateRedisForWorkers(deps, 'crash');
    redis = privateRedis;
    const workerEnv = () => envFor({ LOG_LEVEL: 'warn' });

    const firstProcess = spawnTracked('workers/main.ts', await workerEnv());
    const first = firstProcess.child;
    workers.push(first);
    // Pollers seen recently may belong to earlier files' workers; wait for this process's own identity (pid@host).
    await untilPolling(deps.temporal, deps.config.temporal.namespace, firstProcess, 'the first worker to poll');

    // Redis is frozen (SIGSTOP): the probe's command is sent and never answered, so the activity stays in flight
    // until its start-to-close timeout. The worker dies while it runs; the retry must land on the second worker.
    process.kill(privateRedis.pid, 'SIGSTOP');
    const started = await startSystemCheck(deps.temporal, { checkId: 'crash-1', requestedBy: 'test' });
    const handle = deps.temporal.workflow.getHandle(started.workflowId);
    await waitFor('the Redis probe to be running on the first worker', async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      return pending.some((a) => a.activityType?.name === 'probeRedis' && a.state === PENDING_ACTIVITY_STARTED) ? true : undefined;
    });

    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    process.kill(privateRedis.pid, 'SIGCONT');
    const secondEnv = await workerEnv();
    const second = spawnTracked('workers/main.ts', secondEnv).child;
    workers.push(second);

    const report = (await handle.result()) as SystemCheckReport;
    expect(report.status).toBe('ok');
    expect(report.probes.every((p) => p.ok)).toBe(true);

    const runs: string[] = [];
    for await (const execution of deps.temporal.workflow.list({ query: `WorkflowId = '${systemCheckWorkflowId('crash-1')}'` }))
      runs.push(execution.runId);
    expect(runs).toEqual([started.runId]);
    expect(await systemCheckModel(deps.mongo).countDocuments({ checkId: 'crash-1' })).toBe(1);

    // The probe's completing attempt was the retry, and it ran on the second worker.
    const history = await handle.fetchHistory();
    const redisProbeScheduled = history.events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'probeRedis');
    const redisProbeStarted = history.events?.find(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(redisProbeScheduled?.eventId),
    )?.activityTaskStartedEventAttributes;
    expect(redisProbeStarted?.attempt).toBeGreaterThanOrEqual(2);
    expect(redisProbeStarted?.identity).toMatch(new RegExp(`^${second.pid}@`));

    // The restarted worker exposes the Temporal SDK's metrics and its own registry.
    const sdkMetrics = await (await fetch(`http://${secondEnv.TEMPORAL_METRICS_BIND_ADDRESS}/metrics`)).text();
    expect(sdkMetrics).toContain('temporal_activity_execution_latency');
    const appMetrics = await (await fetch(`http://127.0.0.1:${secondEnv.WORKER_METRICS_PORT}/metrics`)).text();
    expect(appMetrics).toContain('patchproof_process_cpu_seconds_total');
  }, 150_000);
});

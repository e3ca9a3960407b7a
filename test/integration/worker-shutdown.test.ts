import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { freePort, type RunningService } from '../../ops/dev-stack/services';
import { startSystemCheck } from '../../src/system/launch';
import type { SystemCheckReport } from '../../workflows/system/shared';
import { spawnEntry } from '../support/processes';
import { PENDING_ACTIVITY_STARTED, privateRedisForWorkers, untilPolling, waitFor } from '../support/workerProcesses';
import { connectTestDeps, testEnvironment, type TestDeps } from '../support/stack';
import { testEnv } from '../support/testEnv';

const GRACE_MS = 20_000;

interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function spawnMainWorker(env: Record<string, string>): Spawned {
  const child = spawnEntry('workers/main.ts', [], env);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { child, output: () => output, exited };
}

/**
 * The production worker entry point (workers/main.ts) stopped with SIGTERM, as `systemctl stop` does: while it is
 * still starting it exits at once with code 0; while an activity runs it stops polling, lets the activity finish
 * and report within WORKER_SHUTDOWN_GRACE_MS, and exits 0.
 */
describe('worker stopped with SIGTERM', () => {
  let deps: TestDeps;
  let redis: RunningService | undefined;
  let silent: net.Server | undefined;
  const workers: ChildProcess[] = [];

  beforeAll(async () => {
    deps = await connectTestDeps('test');
  });

  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    if (redis) process.kill(redis.pid, 'SIGCONT');
    await redis?.stop();
    silent?.close();
    await deps.close();
  });

  it('exits promptly with code 0 when stopped during start-up', async () => {
    // A "Redis" that accepts connections and never answers: start-up hangs on its first command, so the worker is
    // provably past installing its signal handlers and not yet running when the signal arrives.
    const sockets: net.Socket[] = [];
    const connected = new Promise<void>((resolve) => {
      silent = net.createServer((socket) => {
        sockets.push(socket);
        resolve();
      });
    });
    const port = await new Promise<number>((resolve) =>
      silent!.listen(0, '127.0.0.1', () => resolve((silent!.address() as net.AddressInfo).port)),
    );

    const worker = spawnMainWorker(
      testEnvironment({
        REDIS_URL: `redis://127.0.0.1:${port}`,
        TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
        WORKER_METRICS_PORT: String(await freePort()),
        WORKFLOW_BUNDLE_PATH: testEnv('workflowBundle'),
        LOG_LEVEL: 'info',
      }),
    );
    workers.push(worker.child);
    await Promise.race([
      connected,
      worker.exited.then(() => {
        throw new Error(`the worker exited before connecting to Redis:\n${worker.output()}`);
      }),
    ]);
    // Still starting: nothing has answered its Redis handshake.
    expect(worker.child.exitCode).toBeNull();

    const signalledAt = Date.now();
    worker.child.kill('SIGTERM');
    const exit = await worker.exited;
    for (const socket of sockets) socket.destroy();
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(exit.at - signalledAt).toBeLessThan(5_000);
    expect(worker.output()).toContain('worker stopped during start-up');
  }, 60_000);

  it('lets the running activity finish on the stopping worker, then exits 0 within the grace time', async () => {
    const { redis: privateRedis, workerEnv: envFor } = await privateRedisForWorkers(deps, 'shutdown');
    redis = privateRedis;
    const workerEnv = () =>
      envFor({ WORKER_SHUTDOWN_GRACE_MS: String(GRACE_MS), WORKER_SHUTDOWN_FORCE_MS: String(GRACE_MS * 2), LOG_LEVEL: 'info' });

    const first = spawnMainWorker(await workerEnv());
    workers.push(first.child);
    // Pollers seen recently may belong to earlier files' workers; wait for this process's own identity (pid@host).
    await untilPolling(deps.temporal, deps.config.temporal.namespace, first, 'the first worker to poll');

    // Redis is frozen (SIGSTOP): the probe's command is sent and not answered, so the activity stays in flight.
    process.kill(privateRedis.pid, 'SIGSTOP');
    const checkId = `shutdown-${Date.now()}`;
    const started = await startSystemCheck(deps.temporal, { checkId, requestedBy: 'test' });
    const handle = deps.temporal.workflow.getHandle(started.workflowId);
    await waitFor('the Redis probe to be running on the first worker', async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      return pending.some((a) => a.activityType?.name === 'probeRedis' && a.state === PENDING_ACTIVITY_STARTED) ? true : undefined;
    });

    const signalledAt = Date.now();
    first.child.kill('SIGTERM');
    await waitFor('the worker to begin its shutdown', () => Promise.resolve(first.output().includes('worker stopping') ? true : undefined));
    // Draining, not gone: the activity it holds has not answered yet.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(first.child.exitCode).toBeNull();

    process.kill(privateRedis.pid, 'SIGCONT');
    const exit = await first.exited;
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(exit.at - signalledAt).toBeLessThan(GRACE_MS);
    expect(first.output()).toContain('worker stopped');

    // The stopped worker took no new tasks; a second one finishes the workflow.
    const second = spawnMainWorker(await workerEnv());
    workers.push(second.child);
    const report = (await handle.result()) as SystemCheckReport;
    expect(report.status).toBe('ok');
    expect(report.probes.every((p) => p.ok)).toBe(true);

    // The probe's one and only attempt ran and completed on the worker that was stopped.
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'probeRedis');
    const ofProbe = (id: unknown) => String(id) === String(scheduled?.eventId);
    const probeStarted = events.find(
      (e) => e.activityTaskStartedEventAttributes && ofProbe(e.activityTaskStartedEventAttributes.scheduledEventId),
    )?.activityTaskStartedEventAttributes;
    const probeCompleted = events.find(
      (e) => e.activityTaskCompletedEventAttributes && ofProbe(e.activityTaskCompletedEventAttributes.scheduledEventId),
    )?.activityTaskCompletedEventAttributes;
    expect(probeStarted?.attempt).toBe(1);
    expect(probeStarted?.identity).toMatch(new RegExp(`^${first.child.pid}@`));
    expect(probeCompleted?.identity).toMatch(new RegExp(`^${first.child.pid}@`));
  }, 150_000);
});

import type { NativeConnection, Worker } from '@temporalio/worker';
import { Redis } from 'ioredis';
import { freePort } from '../../ops/dev-stack/services';
import { systemCheckModel } from '../../src/db/models/systemCheck';
import { systemCheckWorkflowId } from '../../src/system/ids';
import { getSystemCheckStatus, startSystemCheck } from '../../src/system/launch';
import type { SystemCheckReport } from '../../workflows/system/shared';
import { recordHistoryIfAsked } from '../support/histories';
import { connectTestDeps, createTestWorker, startTestApi, type TestApi, type TestDeps } from '../support/stack';

const API_KEY = 'test-api-key-0123456789abcdef0123456789';

async function waitForCompletion(api: TestApi, checkId: string): Promise<{ state: string; report: SystemCheckReport }> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${api.baseUrl}/v1/admin/system-checks/${checkId}`, { headers: { 'x-api-key': API_KEY } });
    const body = (await res.json()) as { state: string; report: SystemCheckReport };
    if (body.state !== 'running') return body;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('system check did not complete');
}

describe('SystemCheckWorkflow end to end: API → Temporal dev server → worker → Mongo and Redis', () => {
  let api: TestApi;
  let worker: Worker;
  let workerConnection: NativeConnection;
  let running: Promise<void>;

  beforeAll(async () => {
    api = await startTestApi({ ADMIN_API_MAX: '1000' });
    ({ worker, connection: workerConnection } = await createTestWorker(api.deps));
    running = worker.run();
  });

  afterAll(async () => {
    worker.shutdown();
    await running;
    await workerConnection.close();
    await api.close();
  });

  it('starts a check over HTTP, answers 202 with a status URL, and reports every dependency up', async () => {
    const res = await fetch(`${api.baseUrl}/v1/admin/system-checks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ checkId: 'e2e-ok' }),
    });
    expect(res.status).toBe(202);
    const started = (await res.json()) as { statusUrl: string; workflowId: string; alreadyStarted: boolean };
    expect(started).toEqual({
      checkId: 'e2e-ok',
      workflowId: 'system-check-e2e-ok',
      alreadyStarted: false,
      statusUrl: '/v1/admin/system-checks/e2e-ok',
    });
    expect(res.headers.get('location')).toBe(started.statusUrl);

    const done = await waitForCompletion(api, 'e2e-ok');
    expect(done.state).toBe('completed');
    expect(done.report).toMatchObject({ checkId: 'e2e-ok', requestedBy: 'api', status: 'ok' });
    expect(done.report.probes.map((p) => [p.dependency, p.ok])).toEqual([
      ['mongo', true],
      ['redis', true],
    ]);

    // The worker's activities really wrote: the projection in Mongo and the probe key in Redis.
    const stored = await systemCheckModel(api.deps.mongo).findById('e2e-ok').lean();
    expect(stored).toMatchObject({ status: 'ok', requestedBy: 'api' });
    expect(await api.deps.redis.get('system-check:e2e-ok')).toBe('e2e-ok');

    await recordHistoryIfAsked(api.deps.temporal, 'system-check-e2e-ok', 'system-check-ok');
  });

  it('makes the run findable by its search attributes', async () => {
    await waitForCompletion(api, 'e2e-ok');
    const description = await api.deps.temporal.workflow.getHandle(systemCheckWorkflowId('e2e-ok')).describe();
    expect(description.typedSearchAttributes.get({ name: 'PatchProofKind', type: 'KEYWORD' } as never)).toBe('system-check');
    expect(description.typedSearchAttributes.get({ name: 'PatchProofStatus', type: 'KEYWORD' } as never)).toBe('ok');
  });

  it('gives twenty concurrent starts of one check id exactly one run', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        fetch(`${api.baseUrl}/v1/admin/system-checks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
          body: JSON.stringify({ checkId: 'race-1' }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { workflowId: string; alreadyStarted: boolean } })),
      ),
    );
    expect(results.every((r) => r.status === 202 && r.body.workflowId === 'system-check-race-1')).toBe(true);
    expect(results.filter((r) => !r.body.alreadyStarted)).toHaveLength(1);

    await waitForCompletion(api, 'race-1');
    const runs: string[] = [];
    for await (const execution of api.deps.temporal.workflow.list({ query: `WorkflowId = 'system-check-race-1'` }))
      runs.push(execution.runId);
    expect(runs).toHaveLength(1);
  });

  it('starting a finished check again attaches to it instead of running it twice', async () => {
    await waitForCompletion(api, 'e2e-ok');
    const again = await startSystemCheck(api.deps.temporal, { checkId: 'e2e-ok', requestedBy: 'test' });
    expect(again.alreadyStarted).toBe(true);
    const original = await api.deps.temporal.workflow.getHandle('system-check-e2e-ok').describe();
    expect(again.runId).toBe(original.runId);
  });

  it('serves a schedule-started run by its derived check id from the Mongo projection', async () => {
    // Schedules start runs with a timestamped workflow id and no check id, exactly like this.
    const workflowId = 'system-check-scheduled-2026-11-27T02:00:00Z';
    await api.deps.temporal.workflow.execute('systemCheckWorkflow', {
      workflowId,
      taskQueue: 'patchproof-main',
      args: [{ requestedBy: 'schedule' }],
    });
    const done = await waitForCompletion(api, 'scheduled-2026-11-27T02-00-00Z');
    expect(done).toMatchObject({
      state: 'completed',
      report: { checkId: 'scheduled-2026-11-27T02-00-00Z', requestedBy: 'schedule', status: 'ok' },
    });
  });

  it('answers 404 in the envelope for an unknown check', async () => {
    const res = await fetch(`${api.baseUrl}/v1/admin/system-checks/never-started`, { headers: { 'x-api-key': API_KEY } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('logs activity lines with the workflow and activity ids they belong to', async () => {
    await waitForCompletion(api, 'e2e-ok');
    const line = api.deps.logs.lines.find((l) => l.message === 'system check recorded' && l.checkId === 'e2e-ok');
    expect(line).toMatchObject({
      workflowId: 'system-check-e2e-ok',
      activityType: 'recordSystemCheck',
      workflowType: 'systemCheckWorkflow',
    });
  });
});

describe('SystemCheckWorkflow with Redis down', () => {
  let deps: TestDeps;

  beforeAll(async () => {
    deps = await connectTestDeps('worker');
  });
  afterAll(() => deps.close());

  it('reports degraded and names Redis after the probe exhausts its retries, and still records the report', async () => {
    // A client for a port where nothing listens, configured as in production: commands fail at once.
    const unreachable = new Redis({
      port: await freePort(),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    unreachable.on('error', () => undefined);
    const broken = { ...deps, redis: unreachable };
    const { worker, connection } = await createTestWorker(broken);
    const status = await worker.runUntil(async () => {
      const started = await startSystemCheck(deps.temporal, { checkId: 'redis-down', requestedBy: 'test' });
      await deps.temporal.workflow.getHandle(started.workflowId).result();
      return getSystemCheckStatus(deps.temporal, 'redis-down');
    });
    await connection.close();
    expect(status.state).toBe('completed');
    if (status.state !== 'completed') return;
    expect(status.report.status).toBe('degraded');
    expect(status.report.probes.find((p) => p.dependency === 'redis')).toMatchObject({
      ok: false,
      error: expect.stringContaining('redis probe failed'),
    });
    expect(status.report.probes.find((p) => p.dependency === 'mongo')).toMatchObject({ ok: true });
    expect(await systemCheckModel(deps.mongo).findById('redis-down').lean()).toMatchObject({ status: 'degraded' });
    await recordHistoryIfAsked(deps.temporal, 'system-check-redis-down', 'system-check-degraded');
  });
});

import type { ChildProcess } from 'node:child_process';
import { PrivateKey, Transaction } from '@bsv/sdk';
import { temporal } from '@temporalio/proto';
import { Types } from 'mongoose';
import { parseAnchorScript } from '../../../src/anchoring/anchorScript';
import { verifyMerkleProof } from '../../../src/anchoring/merkle';
import { loadConfig } from '../../../src/config';
import { patchModel } from '../../../src/registration/models';
import { SYSTEM_CHECK_SCHEDULE_ID } from '../../../src/system/ids';
import { emailDeliveryWorkflowId } from '../../../src/email/ids';
import { testEnv } from '../../support/testEnv';
import { TASK_QUEUES } from '../../../workflows/shared/taskQueues';
import { desiredSchedules, reconcileSchedules } from '../../../workers/schedules';
import { freePort } from '../../../ops/dev-stack/services';
import { SvdClient } from '../../../src/sdk/svdClient';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startMainWorkerProcess, startPoolStack, type PoolStack } from '../../support/poolStack';
import { spawnTracked, type TrackedProcess } from '../../support/processes';
import { promQuery, registerScrapeTarget, testPrometheus, unregisterScrapeTargets, type PromVectorSample } from '../../support/prometheus';
import { toolsRequired } from '../../support/requiredTools';
import { ownerAuthTestEnv, testEnvironment } from '../../support/stack';
import { untilPolling, waitFor } from '../../support/workerProcesses';

const EventType = temporal.api.enums.v1.EventType;
const REGISTRATIONS = 12;
const PUBLIC_MAX = 10;
const prometheus = testPrometheus();
const SCRAPE_ID = `scaleout-${process.pid}`;

/**
 * The brand-scale topology on one machine: two API processes (as behind a load balancer) and two main worker
 * processes, on one Temporal namespace, database and Redis. Nothing is in-process: each is its production entry.
 */
describe('two API processes and two main workers on one Temporal, database and Redis', () => {
  let stack: PoolStack;
  const workers: ChildProcess[] = [];
  const apis: { process: TrackedProcess; baseUrl: string }[] = [];
  const workerMetrics: { own: string; sdk: string }[] = [];
  let emailWorker: TrackedProcess;

  beforeAll(async () => {
    stack = await startPoolStack(
      { ANCHOR_CONFIRMATIONS: '1', ANCHOR_BATCH_MAX_WAIT_SECONDS: '1' },
      { blockIntervalMs: 300, inProcessWorker: false },
    );
    for (let i = 0; i < 2; i++) {
      const ports = { own: `127.0.0.1:${await freePort()}`, sdk: `127.0.0.1:${await freePort()}` };
      workers.push(
        await startMainWorkerProcess(stack, { WORKER_METRICS_PORT: ports.own.split(':')[1]!, TEMPORAL_METRICS_BIND_ADDRESS: ports.sdk }),
      );
      workerMetrics.push(ports);
    }
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const api = spawnTracked(
        'api/server.ts',
        testEnvironment({
          ...stack.env,
          ...ownerAuthTestEnv(),
          MONGODB_URI: stack.deps.config.mongo.uri,
          REDIS_URL: stack.deps.config.redis.url,
          PORT: String(port),
          LOG_LEVEL: 'warn',
          ACCESS_LOG: 'false',
          PUBLIC_API_MAX: String(PUBLIC_MAX),
          ADMIN_API_MAX: '100000',
        }),
      );
      const baseUrl = `http://127.0.0.1:${port}`;
      await waitFor(
        'the API to answer /health',
        async () => ((await fetch(`${baseUrl}/health`)).status === 200 ? true : undefined),
        60_000,
        {
          ignoreErrors: true,
          intervalMs: 200,
          context: api.output,
        },
      );
      apis.push({ process: api, baseUrl });
    }
    // The email worker, its own process on its own task queue, as production runs it beside the main workers.
    emailWorker = spawnTracked(
      'workers/email.ts',
      testEnvironment({
        ...stack.env,
        ...ownerAuthTestEnv(),
        MONGODB_URI: stack.deps.config.mongo.uri,
        REDIS_URL: stack.deps.config.redis.url,
        WORKFLOW_BUNDLE_PATH: testEnv('workflowBundle'),
        EMAIL_WORKER_METRICS_PORT: '0',
        LOG_LEVEL: 'warn',
      }),
    );
    await untilPolling(
      stack.deps.temporal,
      stack.deps.config.temporal.namespace,
      emailWorker,
      'the email worker to poll',
      90_000,
      TASK_QUEUES.email,
    );
    await fundAndSyncPool(stack, REGISTRATIONS);
  }, 180_000);

  afterAll(async () => {
    if ('targetsDir' in prometheus) unregisterScrapeTargets(prometheus.targetsDir, SCRAPE_ID);
    const stopping = [...workers, ...apis.map((a) => a.process.child), ...(emailWorker ? [emailWorker.child] : [])].map(
      (child) => new Promise((r) => (child.exitCode !== null ? r(undefined) : (child.once('exit', r), child.kill('SIGTERM')))),
    );
    await Promise.all(stopping);
    await stack?.close();
  }, 90_000);

  it("shares a client's rate limit across API processes: N processes do not multiply it", async () => {
    const answers: { api: number; status: number }[] = [];
    for (let i = 0; i < PUBLIC_MAX * 2; i++) {
      const api = i % 2;
      answers.push({ api, status: (await fetch(`${apis[api]!.baseUrl}/api/svd/kid`)).status });
    }
    expect(answers.filter((a) => a.status === 200)).toHaveLength(PUBLIC_MAX);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(PUBLIC_MAX);
    // Both processes refuse once the shared budget is spent, not just the one that saw more requests.
    expect(new Set(answers.filter((a) => a.status === 429).map((a) => a.api))).toEqual(new Set([0, 1]));
    // A new window for the next tests (the limiter's keys are in the shared Redis).
    const keys = await stack.deps.redis.keys('rl:*');
    if (keys.length > 0) await stack.deps.redis.del(...keys);
  });

  it('completes an SVD challenge begun on one API process on the other', async () => {
    const pmc = PrivateKey.fromRandom();
    const userId = new Types.ObjectId().toHexString();
    const [first, second] = apis;
    const registered = await apiClient(first!.baseUrl, stack.deps.config.auth.apiKey).adminPost('/api/svd/register', {
      userId,
      pmcHex: pmc.toPublicKey().toString(),
    });
    expect(registered.status).toBe(201);
    const { M } = await new SvdClient({ baseUrl: first!.baseUrl }).begin(userId);
    const session = await new SvdClient({ baseUrl: second!.baseUrl }).complete(userId, M, SvdClient.signChallenge(pmc.toHex(), M));
    expect(session.token).toEqual(expect.any(String));
    const me = await fetch(`${first!.baseUrl}/api/owner/session`, { headers: { authorization: `Bearer ${session.token}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { userId: string }).userId).toBe(userId);
    // The challenge is spent everywhere: the first process refuses it too.
    const replay = await fetch(`${first!.baseUrl}/api/svd/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId, M, signatureHex: SvdClient.signChallenge(pmc.toHex(), M) }),
    });
    expect(replay.status).toBe(409);
  });

  it('spreads registrations over both workers and anchors each exactly once', async () => {
    const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');
    const uids = Array.from({ length: REGISTRATIONS }, (_, i) => `SCALE-${String(i).padStart(3, '0')}`);
    const accepted = await Promise.all(
      uids.map((uid, i) =>
        apiClient(apis[i % 2]!.baseUrl, stack.deps.config.auth.apiKey).adminPost('/v1/patches', registrationBody(uid, owner)),
      ),
    );
    expect(accepted.map((a) => a.status)).toEqual(uids.map(() => 202));
    const done = await Promise.all(
      accepted.map((a, i) =>
        apiClient(apis[(i + 1) % 2]!.baseUrl, stack.deps.config.auth.apiKey).waitDone(a.body.statusUrl as string, 90_000),
      ),
    );
    expect(done.map((d) => d.status)).toEqual(uids.map(() => 'anchored'));

    // Which worker process ran each registration's activity: its identity (pid@host) is in the history.
    const identities = new Set<string>();
    for (const uid of uids) {
      const history = await stack.deps.temporal.workflow.getHandle(`registration-${uid}`).fetchHistory();
      const started = history.events!.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED);
      const completed = history.events!.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED);
      expect(completed).toHaveLength(1);
      for (const event of started) identities.add(event.activityTaskStartedEventAttributes!.identity!.split('@')[0]!);
    }
    expect(identities).toEqual(new Set(workers.map((w) => String(w.pid))));

    // Exactly once: every patch is in one anchor, and the anchors on chain commit to exactly these patches.
    const patches = await patchModel(stack.deps.mongo)
      .find({ _id: { $in: uids } })
      .lean();
    expect(patches).toHaveLength(REGISTRATIONS);
    const byTxid = new Map<string, typeof patches>();
    for (const patch of patches) byTxid.set(patch.anchor!.txid, [...(byTxid.get(patch.anchor!.txid) ?? []), patch]);
    let committed = 0;
    for (const [txid, anchored] of byTxid) {
      const raw = await (await fetch(`${stack.simulator.baseUrl}/v1/bsv/test/tx/${txid}/hex`)).text();
      const payload = parseAnchorScript(Transaction.fromHex(raw).outputs[0]!.lockingScript.toHex())!;
      expect(payload.count).toBe(anchored.length);
      for (const patch of anchored) {
        expect(patch.anchor!.proof!.root).toBe(payload.root);
        expect(verifyMerkleProof(patch.recordHash, patch.anchor!.proof!)).toBe(true);
      }
      committed += payload.count;
    }
    expect(committed).toBe(REGISTRATIONS);
  }, 120_000);

  it('mails a code asked for on one API process through the email worker, and accepts it on the other', async () => {
    const to = `scale-${Date.now()}@example.test`;
    const { messageId } = await new SvdClient({ baseUrl: apis[0]!.baseUrl }).requestEmailCode(to);
    const delivery = stack.deps.temporal.workflow.getHandle(emailDeliveryWorkflowId(messageId));
    expect(await delivery.result()).toEqual({ messageId, status: 'sent' });
    // The mail went out from the email worker process, the only poller of its queue.
    const events = (await delivery.fetchHistory()).events ?? [];
    const started = events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED);
    expect(new Set(started.map((e) => e.activityTaskStartedEventAttributes!.identity!.split('@')[0]))).toEqual(
      new Set([String(emailWorker.child.pid)]),
    );
    const inbox = (await (await fetch(`${testEnv('smtpCaptureUrl')}/messages?to=${encodeURIComponent(to)}`)).json()) as { text: string }[];
    const code = /\b(\d{6})\b/.exec(inbox.at(-1)?.text ?? '')?.[1];
    expect(code).toMatch(/^\d{6}$/);
    const verified = await new SvdClient({ baseUrl: apis[1]!.baseUrl }).submitEmailCode(to, code!);
    expect(verified).toMatchObject({ success: true, token: expect.any(String) });
  }, 90_000);

  it('fires a schedule once per interval, whichever worker runs it and however many processes reconcile it', async () => {
    const { temporal } = stack.deps;
    const config = loadConfig(testEnvironment({ ...stack.env, SYSTEM_CHECK_EVERY: '2s' }));
    const desired = desiredSchedules(config).filter((s) => s.scheduleId === SYSTEM_CHECK_SCHEDULE_ID);
    expect(desired).toHaveLength(1);
    // Every worker reconciles the schedules at boot: two doing it at once still make one schedule.
    await Promise.all([reconcileSchedules(temporal, desired), reconcileSchedules(temporal, desired)]);
    const handle = temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID);
    try {
      await new Promise((resolve) => setTimeout(resolve, 9_000));
      await handle.pause('test: counting the runs');
      const { numActionsTaken, createdAt } = (await handle.describe()).info;
      expect(numActionsTaken).toBeGreaterThanOrEqual(3);
      // Each action is one workflow run, finished once, on one of the two workers. Runs of an earlier schedule with
      // the same id (deleted by an earlier test file) stay listed in the namespace, so count only this schedule's.
      const query = `TemporalScheduledById = '${SYSTEM_CHECK_SCHEDULE_ID}' AND StartTime >= '${createdAt.toISOString()}'`;
      let listed: { workflowId: string; status: string }[] = [];
      const runs = await waitFor(
        'the scheduled runs to finish',
        async () => {
          listed = [];
          for await (const execution of temporal.workflow.list({ query })) {
            listed.push({ workflowId: execution.workflowId, status: execution.status.name });
          }
          return listed.length === numActionsTaken && listed.every((r) => r.status === 'COMPLETED') ? listed : undefined;
        },
        60_000,
        { intervalMs: 500, context: () => `expected ${numActionsTaken} completed runs, listed: ${JSON.stringify(listed)}` },
      );
      expect(new Set(runs.map((r) => r.workflowId)).size).toBe(numActionsTaken);
      const ranOn = new Set<string>();
      for (const run of runs) {
        const events = (await temporal.workflow.getHandle(run.workflowId).fetchHistory()).events ?? [];
        const completed = events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED);
        expect(completed).toHaveLength(1);
        for (const e of events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)) {
          ranOn.add(e.workflowTaskStartedEventAttributes!.identity!.split('@')[0]!);
        }
      }
      expect([...ranOn].every((pid) => workers.some((w) => String(w.pid) === pid))).toBe(true);
    } finally {
      await handle.delete();
    }
  }, 90_000);

  const scrapeTitle =
    'url' in prometheus || toolsRequired
      ? 'is scraped by Prometheus per process: each API and each worker is its own target, all up'
      : `is scraped by Prometheus per process — skipped: ${prometheus.problem}`;
  it(scrapeTitle, async () => {
    if (!('url' in prometheus)) {
      expect(toolsRequired).toBe(false);
      return;
    }
    // The API's /metrics wants the API key, as production's does; Prometheus sends it from a file.
    apis.forEach((api, i) =>
      registerScrapeTarget(
        prometheus.targetsDir,
        'patchproof-api',
        `${SCRAPE_ID}-api${i}`,
        api.baseUrl.replace('http://', ''),
        stack.deps.config.auth.apiKey,
      ),
    );
    workerMetrics.forEach((ports, i) => {
      registerScrapeTarget(prometheus.targetsDir, 'patchproof-worker', `${SCRAPE_ID}-worker${i}`, ports.own);
      registerScrapeTarget(prometheus.targetsDir, 'patchproof-worker-temporal', `${SCRAPE_ID}-sdk${i}`, ports.sdk);
    });
    const expected = [0, 1].flatMap((i) => [
      `patchproof-api ${SCRAPE_ID}-api${i}`,
      `patchproof-worker ${SCRAPE_ID}-worker${i}`,
      `patchproof-worker-temporal ${SCRAPE_ID}-sdk${i}`,
    ]);
    const up = await waitFor(
      'Prometheus to scrape every API and worker process',
      async () => {
        const result = await promQuery(prometheus.url, `up{test_id=~"${SCRAPE_ID}-.*"} == 1`);
        const seen = new Set(((result.data?.result ?? []) as PromVectorSample[]).map((s) => `${s.metric.job} ${s.metric.test_id}`));
        return expected.every((target) => seen.has(target)) ? seen : undefined;
      },
      30_000,
      { intervalMs: 500 },
    );
    expect([...up].filter((target) => expected.includes(target)).sort()).toEqual(expected.sort());
  });
});

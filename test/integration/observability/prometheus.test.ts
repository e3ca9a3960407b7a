import { type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PrivateKey, PublicKey } from '@bsv/sdk';
import { Client, Connection } from '@temporalio/client';
import { createDevKms, type DevKms } from '../../../ops/stand-ins/dev-kms/server';
import { freePorts } from '../../../ops/dev-stack/services';
import { loadConfig } from '../../../src/config';
import { connectMongo } from '../../../src/db/mongo';
import { SvdClient, SvdError } from '../../../src/sdk/svdClient';
import { TEMPORAL_SDK_METRICS } from '../../../src/metrics/temporalSdk';
import { SYSTEM_CHECK_SCHEDULE_ID } from '../../../src/system/ids';
import { startSimulator, type RunningSimulator } from '../../support/chainSimulator';
import { jsonCaller, listen, type Listening } from '../../support/http';
import { spawnEntry } from '../../support/processes';
import {
  promQuery,
  registerScrapeTarget,
  sampleCount,
  testPrometheus,
  unregisterScrapeTargets,
  type PromVectorSample,
} from '../../support/prometheus';
import { alertRules, dashboardQueries, withAllVariables } from '../../support/promql';
import { describeWithTool, requireTool, toolsRequired } from '../../support/requiredTools';
import { ownerAuthTestEnv, testEnvironment } from '../../support/stack';
import { jestWorkerId, testEnv } from '../../support/testEnv';
import { waitFor as waitUntil } from '../../support/workerProcesses';

/**
 * The real processes (API, main worker, email worker) on the test services, with the dev KMS and the chain simulator,
 * scraped every second by the Prometheus that globalSetup started. The test drives logins, a registration anchored
 * on the simulator and a system check, then evaluates every dashboard panel query and every alert expression through
 * Prometheus's HTTP API, and scans everything the processes logged for secrets.
 */
const prometheus = testPrometheus();
const describeWithPrometheus = describeWithTool('url' in prometheus);
const title =
  'url' in prometheus || toolsRequired ? 'Prometheus scraping the API and workers' : `Prometheus scraping — skipped: ${prometheus.problem}`;

const KMS_API_KEY = 'observability-kms-api-key-0123456789';
const JWT_SECRET = 'observability-jwt-secret-0123456789abcdef';

/**
 * Panel queries that cannot have data after this run, and why; every other panel must return samples. Keyed by
 * dashboard file and panel title. Empty today: the run exercises every metric, failures included (a top-up that
 * cannot be funded fails its activity and its workflow).
 */
const PANELS_WITHOUT_DATA: Record<string, string> = {};

/** Alert signals (the expression without its threshold) that cannot have data after this run, and why. Empty today. */
const ALERTS_WITHOUT_DATA: Record<string, string> = {};

interface Started {
  name: string;
  child: ChildProcess;
  log: WriteStream;
  logFile: string;
}

describeWithPrometheus(title, () => {
  // Read in beforeAll: a skipped describe still runs its body.
  let prom: { url: string; targetsDir: string };
  const processes: Started[] = [];
  const secrets: Record<string, string> = {};
  const testId = `obs-${jestWorkerId()}-${Date.now()}`;
  let kms: DevKms;
  let kmsServer: Listening;
  let simulator: RunningSimulator;
  let apiUrl: string;
  let temporalMetricsUrl: string;
  let env: Record<string, string>;
  let logDir: string;
  let temporal: Client;
  let temporalConnection: Connection;

  const apiKey = () => env.API_KEY!;

  function start(name: string, entry: string, extra: Record<string, string> = {}): Started {
    const logFile = path.join(logDir, `${name}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    const child = spawnEntry(entry, [], { ...env, ...extra });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const started = { name, child, log, logFile };
    processes.push(started);
    return started;
  }

  const tails = () =>
    processes.map((p) => `--- ${p.name}\n${readFileSync(p.logFile, 'utf8').split('\n').slice(-20).join('\n')}`).join('\n');
  const waitFor = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000) =>
    waitUntil(what, probe, timeoutMs, { intervalMs: 250, ignoreErrors: true, context: tails });
  const api = jsonCaller(() => apiUrl);
  const admin = (method: string, route: string, body?: unknown) => api(method, route, body, { 'x-api-key': apiKey() });

  /** Waits until Prometheus has scraped a series matching `expr` with a value above `min`. */
  const scraped = (expr: string, min = 0) =>
    waitFor(`Prometheus to scrape ${expr}`, async () => {
      const result = await promQuery(prom.url, expr);
      const samples = (result.data?.result ?? []) as PromVectorSample[];
      return samples.some((s) => Number(s.value[1]) > min) ? true : undefined;
    });

  beforeAll(async () => {
    prom = requireTool('url' in prometheus ? prometheus : undefined, 'Prometheus');
    logDir = path.join(testEnv('scratchDir'), 'logs', testId);
    mkdirSync(logDir, { recursive: true });
    kms = createDevKms({ dataDir: mkdtempSync(path.join(tmpdir(), 'obs-kms-')), apiKey: KMS_API_KEY, keys: ['issuer', 'funding', 'svd'] });
    kmsServer = await listen(kms.app);
    simulator = await startSimulator({ blockIntervalMs: 300 });
    const [apiPort, workerPort, temporalPort, emailWorkerPort] = (await freePorts(4)) as [number, number, number, number];
    const fundingKey = kms.keys.describe('funding');
    env = testEnvironment({
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      ACCESS_LOG: 'true',
      METRICS_REQUIRE_API_KEY: 'true',
      PORT: String(apiPort),
      BIND: '127.0.0.1',
      WORKER_METRICS_PORT: String(workerPort),
      TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${temporalPort}`,
      WORKFLOW_BUNDLE_PATH: testEnv('workflowBundle'),
      SCHEDULE_METRICS_INTERVAL_SEC: '1',
      SYSTEM_CHECK_EVERY: '1h',
      JWT_SECRET,
      KMS_SIGN_URL: kmsServer.baseUrl,
      KMS_API_KEY,
      WOC_BASE_URL: simulator.baseUrl,
      WOC_NETWORK: 'test',
      WOC_REQUESTS_PER_SECOND: '1000',
      UTXO_FUNDING_ADDRESS: PublicKey.fromString(fundingKey.pubKeyHex).toAddress('testnet'),
      UTXO_CONFIRMATION_POLL_SECONDS: '1',
      UTXO_HEALTH_CACHE_MS: '0',
      FEE_PER_KB: '100',
      // Splits of 1M sat cannot be funded from the faucet's outputs: the top-up below fails for lack of funds.
      UTXO_SPLIT_SIZE_SATS: '1000000',
      ANCHOR_CONFIRMATIONS: '1',
      ...ownerAuthTestEnv(),
    });
    Object.assign(secrets, { API_KEY: apiKey(), KMS_API_KEY, JWT_SECRET });
    apiUrl = `http://127.0.0.1:${apiPort}`;
    temporalMetricsUrl = `http://127.0.0.1:${temporalPort}/metrics`;

    start('worker-main', 'workers/main.ts');
    start('worker-email', 'workers/email.ts', { EMAIL_WORKER_METRICS_PORT: String(emailWorkerPort) });
    start('api', 'api/server.ts');
    await waitFor('the API', async () => ((await fetch(`${apiUrl}/health`)).ok ? true : undefined));
    await waitFor('the worker', async () => ((await fetch(`http://127.0.0.1:${workerPort}/health`)).ok ? true : undefined));
    await waitFor('the Temporal exporter', async () => ((await fetch(temporalMetricsUrl)).ok ? true : undefined));

    registerScrapeTarget(prom.targetsDir, 'patchproof-api', testId, `127.0.0.1:${apiPort}`, apiKey());
    registerScrapeTarget(prom.targetsDir, 'patchproof-worker', testId, `127.0.0.1:${workerPort}`);
    registerScrapeTarget(prom.targetsDir, 'patchproof-worker', `${testId}-email`, `127.0.0.1:${emailWorkerPort}`);
    registerScrapeTarget(prom.targetsDir, 'patchproof-worker-temporal', testId, `127.0.0.1:${temporalPort}`);

    temporalConnection = await Connection.connect({ address: env.TEMPORAL_ADDRESS! });
    temporal = new Client({ connection: temporalConnection, namespace: env.TEMPORAL_NAMESPACE! });

    await driveTraffic();
  }, 240_000);

  afterAll(async () => {
    await temporal?.schedule
      .getHandle(SYSTEM_CHECK_SCHEDULE_ID)
      .delete()
      .catch(() => undefined);
    await temporalConnection?.close();
    // Scraping stops with the processes; their database goes too.
    unregisterScrapeTargets(prom.targetsDir, testId);
    for (const p of processes.reverse()) {
      if (p.child.exitCode === null) {
        const exited = new Promise((r) => p.child.once('exit', r));
        p.child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
      }
      p.log.end();
    }
    await simulator?.stop();
    await kmsServer?.close();
    if (env) {
      const mongo = await connectMongo(loadConfig(env).mongo);
      await mongo.dropDatabase();
      await mongo.close();
    }
  }, 60_000);

  async function driveTraffic(): Promise<void> {
    // HTTP: health, readiness, metrics with and without the key, an unknown route.
    expect((await api('GET', '/health')).status).toBe(200);
    expect((await api('GET', '/ready')).status).toBe(200);
    expect((await api('GET', '/metrics')).status).toBe(401);
    expect((await api('GET', '/metrics', undefined, { 'x-api-key': 'not-the-key-0123456789' })).status).toBe(401);
    expect((await api('GET', '/no-such-route')).status).toBe(404);

    // Email code → SVD key registration → SVD login; one refused signature and one replay.
    const client = new SvdClient({ baseUrl: apiUrl });
    const email = `observed-${Date.now()}@example.com`;
    secrets.EMAIL = email;
    const { messageId } = await client.requestEmailCode(email);
    expect(messageId).toEqual(expect.any(String));
    const code = await waitFor('the verification mail', async () => {
      const res = await fetch(`${testEnv('smtpCaptureUrl')}/messages?to=${encodeURIComponent(email)}`);
      const messages = (await res.json()) as { text: string }[];
      return /\b(\d{6})\b/.exec(messages.at(-1)?.text ?? '')?.[1];
    });
    secrets.CODE = code;
    const verified = await client.submitEmailCode(email, code);
    secrets.EMAIL_TOKEN = verified.token;
    const owner = PrivateKey.fromRandom();
    secrets.OWNER_PRIVATE_KEY = owner.toHex();
    await client.register(SvdClient.publicKeyOf(owner.toHex()), verified.token);
    const session = await client.login(verified.userId, owner.toHex());
    secrets.SESSION_TOKEN = session.token;
    const { M } = await client.begin(verified.userId);
    const bad = await client
      .complete(verified.userId, M, SvdClient.signChallenge(PrivateKey.fromRandom().toHex(), M))
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(SvdError);
    const again = await client.begin(verified.userId);
    const signature = SvdClient.signChallenge(owner.toHex(), again.M);
    await client.complete(verified.userId, again.M, signature);
    expect(await client.complete(verified.userId, again.M, signature).catch((e: unknown) => (e as SvdError).code)).toBe('SVD_REPLAYED');

    // Pool and registration: fund, sync, register a patch and wait until it is anchored (KMS, WOC, broadcast).
    const funding = env.UTXO_FUNDING_ADDRESS!;
    for (let i = 0; i < 3; i++) {
      const res = await simulator.admin('POST', '/faucet', { address: funding, satoshis: 20_000 + i, confirmed: true });
      expect(res.status).toBe(200);
    }
    const sync = await admin('POST', '/v1/admin/utxo/sync', {});
    expect(sync.status).toBe(202);
    await waitFor('the sync', async () => {
      const status = await admin('GET', `/v1/admin/utxo/operations/${String(sync.body.workflowId)}`);
      return status.body.state === 'completed' ? true : undefined;
    });
    expect((await admin('GET', '/v1/admin/utxo-health')).status).toBe(200);
    const ownerAddress = PublicKey.fromString(kms.keys.ensure('owner-obs').pubKeyHex).toAddress('testnet');
    const uid = `OBS-${Date.now()}`;
    const accepted = await admin('POST', '/v1/patches', {
      product: { uid_tag_id: uid, name: 'Field jacket', category: 'apparel', sku: 'FJ-01', serial_number: 'SN-1', material: 'wool' },
      metadata: { notes: 'observed', image: 'https://img.example/fj.png', patch_location: 'left sleeve' },
      auth: { owner: ownerAddress },
    });
    expect(accepted.status).toBe(202);
    const anchored = await waitFor(
      'the registration',
      async () => {
        const status = await admin('GET', String(accepted.body.statusUrl));
        return status.body.state === 'running' ? undefined : status.body;
      },
      120_000,
    );
    expect(anchored).toMatchObject({ state: 'completed', status: 'anchored' });

    // A top-up the funding address cannot cover: its activity and its workflow fail (insufficient funds).
    const topUp = await admin('POST', '/v1/admin/utxo/top-up', {});
    expect(topUp.status).toBe(202);
    const failed = await waitFor('the top-up', async () => {
      const status = await admin('GET', `/v1/admin/utxo/operations/${String(topUp.body.workflowId)}`);
      return status.body.state === 'running' ? undefined : status.body;
    });
    expect(failed).toMatchObject({ state: 'failed', failureType: 'InsufficientFunds' });

    // A system check (Mongo and Redis probes in the worker), and one from the worker's schedule.
    expect((await admin('POST', '/v1/admin/system-checks', {})).status).toBe(202);
    await waitFor(
      'the system-check schedule',
      async () => (await temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID).describe()).scheduleId,
    );
    await temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID).trigger();

    // Prometheus has seen the run once the last counters arrive, from every job.
    await scraped('patchproof_registrations_total{outcome="anchored"}');
    await scraped('patchproof_svd_events_total{event_type="replayed"}');
    await scraped('sum(temporal_workflow_completed)');
    await scraped('sum(temporal_workflow_failed)');
    await scraped('sum(patchproof_utxo_pool_operation_failures_total)');
    await scraped('count(patchproof_schedule_next_action_timestamp_seconds)');
    await scraped('max(patchproof_schedule_last_action_timestamp_seconds)');
    await scraped('sum(patchproof_email_deliveries_total)');
    // Five more scrapes, so every rate() has two samples after the last event.
    await new Promise((r) => setTimeout(r, 5_000));
  }

  it('scrapes the API (with its API key), the worker and the worker’s Temporal exporter', async () => {
    const up = await promQuery(prom.url, `up{test_id=~"${testId}.*"}`);
    const byTarget = Object.fromEntries(
      (up.data!.result as PromVectorSample[]).map((s) => [`${s.metric.job} ${s.metric.test_id}`, s.value[1]]),
    );
    expect(byTarget).toEqual({
      [`patchproof-api ${testId}`]: '1',
      [`patchproof-worker ${testId}`]: '1',
      [`patchproof-worker ${testId}-email`]: '1',
      [`patchproof-worker-temporal ${testId}`]: '1',
    });
  });

  it('finds every Temporal SDK metric the dashboards and alerts use in the real worker’s exporter output', async () => {
    const exposition = await (await fetch(temporalMetricsUrl)).text();
    const families = new Set([...exposition.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    expect(families.size).toBeGreaterThan(10);
    expect(TEMPORAL_SDK_METRICS.filter((name) => !families.has(name))).toEqual([]);
  });

  it('evaluates every dashboard panel query: each is well-formed, and has data unless listed with a reason', async () => {
    const empty: string[] = [];
    for (const query of dashboardQueries()) {
      const result = await promQuery(prom.url, withAllVariables(query.expr));
      expect({ query: query.expr, status: result.status, error: result.error }).toEqual({
        query: query.expr,
        status: 'success',
        error: undefined,
      });
      if (sampleCount(result) === 0) empty.push(`${query.dashboard} / ${query.panel}`);
    }
    expect([...new Set(empty)].sort()).toEqual(Object.keys(PANELS_WITHOUT_DATA).sort());
  });

  it('evaluates every alert expression: each is well-formed, and its signal has data unless listed with a reason', async () => {
    const empty: string[] = [];
    for (const rule of alertRules()) {
      const full = await promQuery(prom.url, rule.expr);
      expect({ alert: rule.alert, status: full.status, error: full.error }).toEqual({
        alert: rule.alert,
        status: 'success',
        error: undefined,
      });
      const signal = await promQuery(prom.url, withoutThreshold(rule.expr));
      expect({ alert: rule.alert, status: signal.status }).toEqual({ alert: rule.alert, status: 'success' });
      if (sampleCount(signal) === 0) empty.push(rule.alert);
    }
    expect(empty.sort()).toEqual(Object.keys(ALERTS_WITHOUT_DATA).sort());
    // Prometheus loaded the same rule file and evaluates it.
    const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string }[] }[] };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );
    expect(loaded.filter((r) => r.health === 'err')).toEqual([]);
  });

  it('fires the alerts for what went wrong in the run, and only those', async () => {
    type Alert = { labels: Record<string, string>; state: string };
    let lastAlerts: string[] = [];
    // Scrape, rule evaluation and the worker's metric export each add their interval: on a busy machine, minutes.
    const firing = await waitFor(
      'the insufficient-funds alert',
      async () => {
        const body = (await (await fetch(`${prom.url}/api/v1/alerts`)).json()) as { data: { alerts: Alert[] } };
        lastAlerts = body.data.alerts.map((a) => `${a.labels.alertname}:${a.state}`);
        const alerts = body.data.alerts.filter((a) => a.state === 'firing');
        return alerts.some((a) => a.labels.alertname === 'PatchProofWorkflowFailures') &&
          alerts.some((a) => a.labels.alertname === 'PatchProofPoolInsufficientFunds')
          ? alerts
          : undefined;
      },
      150_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err).slice(0, 200)}\nalerts last seen: ${lastAlerts.join(', ') || 'none'}`);
    });
    expect(firing.map((a) => a.labels.alertname).sort()).toEqual(['PatchProofPoolInsufficientFunds', 'PatchProofWorkflowFailures']);
    expect(firing).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ labels: expect.objectContaining({ alertname: 'PatchProofPoolInsufficientFunds', operation: 'top-up' }) }),
        expect.objectContaining({
          labels: expect.objectContaining({ alertname: 'PatchProofWorkflowFailures', workflow_type: 'utxoTopUpWorkflow' }),
        }),
      ]),
    );
  }, 180_000);

  it('logs access lines, refused API keys with route and IP, and on-chain events on their own channel', () => {
    const lines = (name: string) =>
      readFileSync(path.join(logDir, `${name}.log`), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const apiLines = lines('api');
    expect(apiLines).toEqual(
      expect.arrayContaining([expect.objectContaining({ message: 'http request', route: '/v1/patches', status: 202 })]),
    );
    expect(apiLines).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ message: 'api key rejected', route: '/metrics', ip: expect.stringMatching(/127\.0\.0\.1/) }),
      ]),
    );
    const onChain = lines('worker-main').filter((l) => l.channel === 'on-chain');
    expect(onChain.map((l) => l.message)).toEqual(expect.arrayContaining(['pool synced', 'broadcast', 'registrations anchored']));
  });

  it('leaves no secret, code, key, token or email address in any log the run produced', () => {
    const files = listFiles(path.join(testEnv('scratchDir'), 'logs'));
    const ours = processes.map((p) => p.logFile);
    for (const file of ours) expect(files).toContain(file);
    expect(ours.reduce((size, file) => size + statSync(file).size, 0)).toBeGreaterThan(10_000);
    const findings: string[] = [];
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const [name, value] of Object.entries(secrets)) if (text.includes(value)) findings.push(`${file}: ${name}`);
      // Patterns, whoever logged them: JWTs, bearer credentials, PEM keys, WIFs, full email addresses.
      if (/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\./.test(text)) findings.push(`${file}: a JWT`);
      if (/Bearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/.test(text)) findings.push(`${file}: a bearer credential`);
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) findings.push(`${file}: a PEM private key`);
      if (/\b[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}\b/.test(text)) findings.push(`${file}: a WIF`);
      const emails = [...text.matchAll(/\b[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g)].map((m) => m[0]);
      if (emails.length > 0) findings.push(`${file}: email addresses ${[...new Set(emails)].slice(0, 3).join(', ')}`);
    }
    expect(findings).toEqual([]);
    // The scanned logs cover the flows that handled those values.
    const all = ours.map((f) => readFileSync(f, 'utf8')).join('\n');
    for (const message of [
      'verification code issued',
      'email sent',
      'email code accepted',
      'svd login completed',
      'registrations anchored',
    ]) {
      expect(all).toContain(`"message":"${message}"`);
    }
  });
});

/** The expression left of its last top-level comparison: the signal an alert compares with its threshold. */
function withoutThreshold(expr: string): string {
  let depth = 0;
  let quoted = false;
  let cut = -1;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === '"' && expr[i - 1] !== '\\') quoted = !quoted;
    if (quoted) continue;
    if ('({['.includes(c)) depth++;
    else if (')}]'.includes(c)) depth--;
    else if (depth === 0 && /^(==|!=|>=|<=|>|<)/.test(expr.slice(i)) && expr[i - 1] !== '=' && expr[i - 1] !== '!') cut = i;
  }
  return cut < 0 ? expr : expr.slice(0, cut).trim();
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? listFiles(full) : [full];
  });
}

/**
 * A stack whose Redis, database (FerretDB) and Temporal dev server belong to one caller, so it can freeze them with
 * SIGSTOP, or stop and start them again, without touching the services other test files share; the API runs as its
 * own process (api/server.ts, as production runs it) so its answers and its RSS are its own. Used by the stall test
 * and test/bench/stalls.ts, and (restartable, with the main worker as its own process) by the restart test and
 * test/bench/restarts.ts.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { PublicKey } from '@bsv/sdk';
import { Connection } from '@temporalio/client';
import { provision } from '../../ops/dev-stack/provision';
import { freePorts, startMongoWire, startRedis, startTemporalDevServer, type RunningService } from '../../ops/dev-stack/services';
import { ensureSearchAttributes } from '../../src/temporal/searchAttributes';
import { registrationWorkflowId } from '../../src/registration/ids';
import { patchModel } from '../../src/registration/models';
import { registrationBody } from './patchApi';
import { startMainWorkerTracked, startPoolStack, type PoolStack } from './poolStack';
import { spawnEntry, type TrackedProcess } from './processes';
import { testEnvironment } from './stack';

export type StalledService = 'redis' | 'mongo' | 'temporal';
export const STALLED_SERVICES: StalledService[] = ['redis', 'mongo', 'temporal'];

export interface StallStack {
  pool: PoolStack;
  apiUrl: string;
  api: ChildProcess;
  /** The API process's resident set, in MiB. */
  apiRssMiB(): number;
  /** The API's last log lines (warn and above). */
  apiOutput(): string;
  /** The main worker as its own process (workers/main.ts), when the stack was started with `workerProcess`. */
  worker?: TrackedProcess;
  freeze(service: StalledService): void;
  thaw(service: StalledService): void;
  /** Stops the service (SIGTERM, as an operator or an orchestrator does); restartable stacks only. */
  stop(service: StalledService): Promise<void>;
  /** Starts the stopped service again on the same port with the same data; restartable stacks only. */
  start(service: StalledService): Promise<void>;
  close(): Promise<void>;
}

export interface StallStackOptions {
  /**
   * Services that can be stopped and started again with their data: Temporal on a SQLite file rather than in
   * memory, PostgreSQL (under FerretDB) on a fixed port. Redis keeps no data across a restart either way: nothing a
   * registration or a login needs outlives one (docs/OPERATIONS.md, "When a dependency restarts").
   */
  restartable?: boolean;
  /** Runs the main worker as its own process (workers/main.ts) instead of inside the caller. */
  workerProcess?: boolean;
  /** Settings for the API and the worker beyond the stack's own. */
  env?: Record<string, string>;
  /** The chain simulator's block interval. */
  blockIntervalMs?: number;
}

export async function startStallStack(options: StallStackOptions = {}): Promise<StallStack> {
  const tools = await provision({ purpose: 'dev', say: () => undefined });
  if (!tools.redisServer) throw new Error('the stall stack needs redis-server');
  if (tools.mongo.kind === 'external') throw new Error('the stall stack starts its own database');
  const scratch = mkdtempSync(path.join(tmpdir(), 'patchproof-stall-'));
  const logs = path.join(scratch, 'logs');
  const owned: RunningService[] = [];
  const stopOwned = async () => {
    for (let s = owned.pop(); s; s = owned.pop()) await s.stop().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    const [redisPort, mongoPort, temporalPort, apiPort, postgresPort] = (await freePorts(5)) as [number, number, number, number, number];
    const { mongo: mongoTools, redisServer, temporal: temporalBin } = tools;
    const starters: Record<StalledService, () => Promise<RunningService>> = {
      redis: () => startRedis({ bin: redisServer, port: redisPort, logFile: path.join(logs, 'redis.log') }),
      mongo: () =>
        startMongoWire({
          mongo: mongoTools,
          port: mongoPort,
          dataDir: path.join(scratch, 'db'),
          logFile: path.join(logs, 'db.log'),
          ...(options.restartable && { postgresPort }),
        }),
      temporal: () =>
        startTemporalDevServer({
          bin: temporalBin,
          port: temporalPort,
          uiPort: null,
          namespaces: [],
          logFile: path.join(logs, 'temporal.log'),
          ...(options.restartable && { dbFile: path.join(scratch, 'temporal', 'temporal.db') }),
        }),
    };
    const running = {} as Record<StalledService, RunningService | undefined>;
    for (const service of STALLED_SERVICES) {
      const started = await starters[service]();
      running[service] = started;
      // Stopped last-started first; a service restarted since is looked up again when the stack closes.
      owned.push({ ...started, stop: () => running[service]?.stop() ?? Promise.resolve() });
    }
    const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
    await ensureSearchAttributes(connection, 'default');
    await connection.close();

    const stores = {
      MONGODB_URI: `mongodb://127.0.0.1:${mongoPort}/stall_${randomBytes(3).toString('hex')}`,
      REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      TEMPORAL_NAMESPACE: 'default',
    };
    const pool = await startPoolStack(
      { ...stores, LOG_LEVEL: 'warn', ...options.env },
      { inProcessWorker: !options.workerProcess, ...(options.blockIntervalMs && { blockIntervalMs: options.blockIntervalMs }) },
    );
    const worker = options.workerProcess ? await startMainWorkerTracked(pool).catch(failWith(pool)) : undefined;
    const api = spawnEntry(
      'api/server.ts',
      [],
      // Generous limits: the probes come from one IP, and a limiter's own 429 is not what is measured here.
      testEnvironment({
        ...pool.env,
        ...stores,
        PORT: String(apiPort),
        LOG_LEVEL: 'warn',
        ACCESS_LOG: 'false',
        SVD_RATE_MAX_PER_IP: '1000000',
        SVD_RATE_MAX_PER_USER: '1000000',
        PUBLIC_API_MAX: '1000000',
        ADMIN_API_MAX: '1000000',
        API_KEY_RATE_MAX: '1000000',
        ...options.env,
      }),
    );
    let apiOutput = '';
    const keep = (chunk: Buffer) => (apiOutput = (apiOutput + chunk.toString()).slice(-20_000));
    api.stdout?.on('data', keep);
    api.stderr?.on('data', keep);
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    await waitUntil('the API to answer /health', 60_000, async () => {
      if (api.exitCode !== null) throw new Error(`the API exited: ${apiOutput}`);
      return (await fetch(`${apiUrl}/health`).catch(() => undefined))?.status === 200;
    });

    const pidOf = (service: StalledService) => {
      const service_ = running[service];
      if (!service_) throw new Error(`${service} is stopped`);
      return service_.pid;
    };
    const frozen = new Set<StalledService>();
    return {
      pool,
      apiUrl,
      api,
      ...(worker && { worker }),
      apiRssMiB: () => rssMiB(api.pid!),
      apiOutput: () => apiOutput,
      freeze(service) {
        process.kill(pidOf(service), 'SIGSTOP');
        frozen.add(service);
      },
      thaw(service) {
        process.kill(pidOf(service), 'SIGCONT');
        frozen.delete(service);
      },
      async stop(service) {
        if (!options.restartable) throw new Error('this stack was not started restartable');
        const stopping = running[service];
        running[service] = undefined;
        await stopping?.stop();
      },
      async start(service) {
        if (running[service]) throw new Error(`${service} is already running`);
        running[service] = await starters[service]();
      },
      async close() {
        // A frozen service cannot stop: thaw it first, whatever failed.
        for (const service of frozen) process.kill(pidOf(service), 'SIGCONT');
        // Stopped services come back, so the workflows left running can be terminated and the data dropped.
        for (const service of STALLED_SERVICES) if (!running[service]) running[service] = await starters[service]().catch(() => undefined);
        for (const child of [api, ...(worker ? [worker.child] : [])]) {
          child.kill('SIGTERM');
          await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
        }
        await pool.close();
        await stopOwned();
      },
    };
  } catch (err) {
    await stopOwned();
    throw err;
  }
}

/** Closes the pool stack when what follows its start fails, and passes the failure on. */
function failWith(pool: PoolStack) {
  return async (err: unknown): Promise<never> => {
    await pool.close().catch(() => undefined);
    throw err;
  };
}

export async function waitUntil(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await probe()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.match(/(\d+)/)?.[1] ?? NaN) / 1024;
}

/** What one probe request got: its status (0: no answer within the harness's own limit), time and Retry-After. */
export interface ProbeAnswer {
  probe: ProbeName;
  status: number;
  ms: number;
  retryAfter: string | null;
  /** Why there was no answer (status 0). */
  error?: string;
}

export type ProbeName = 'verify' | 'register' | 'svdBegin' | 'ready';

/**
 * The documented answer of each probed route while one dependency stalls (docs/OPERATIONS.md, "When a dependency
 * stalls"), and its budget. /ready's budget is its own per-check timeout (2 s) with a little room.
 */
export const STALL_CONTRACT: Record<ProbeName, { label: string; budgetMs: number; during: Record<StalledService, number> }> = {
  verify: { label: 'GET verify (unknown uid)', budgetMs: 2_000, during: { redis: 200, mongo: 503, temporal: 200 } },
  register: { label: 'POST /v1/patches', budgetMs: 2_000, during: { redis: 202, mongo: 503, temporal: 503 } },
  svdBegin: { label: 'POST /api/svd/begin', budgetMs: 1_000, during: { redis: 503, mongo: 200, temporal: 200 } },
  ready: { label: '/ready', budgetMs: 2_500, during: { redis: 503, mongo: 503, temporal: 503 } },
};
export const PROBE_NAMES = Object.keys(STALL_CONTRACT) as ProbeName[];

/** The harness gives up on a request after this long and records "no answer" (status 0). */
const NO_ANSWER_MS = 15_000;

/** Sends one probe; registrations use the uid as Idempotency-Key, so a retry is recognised as the same request. */
export async function probe(stack: StallStack, name: ProbeName, uid?: string): Promise<ProbeAnswer> {
  const apiKey = stack.pool.deps.config.auth.apiKey;
  const json = { 'content-type': 'application/json' };
  const requests: Record<ProbeName, () => Promise<{ status: number; retryAfter: string | null; body: string }>> = {
    verify: () => send(stack.apiUrl, 'GET', `/v1/patches/NO-SUCH-${randomBytes(4).toString('hex')}/verify`),
    register: () =>
      send(
        stack.apiUrl,
        'POST',
        '/v1/patches',
        { ...json, 'x-api-key': apiKey, 'idempotency-key': uid! },
        JSON.stringify(registrationBody(uid!, ownerAddress(stack))),
      ),
    svdBegin: () => send(stack.apiUrl, 'POST', '/api/svd/begin', json, JSON.stringify({ userId: randomBytes(12).toString('hex') })),
    ready: () => send(stack.apiUrl, 'GET', '/ready'),
  };
  const started = performance.now();
  try {
    const { status, retryAfter } = await requests[name]();
    return { probe: name, status, retryAfter, ms: performance.now() - started };
  } catch (err) {
    return { probe: name, status: 0, ms: performance.now() - started, retryAfter: null, error: String(err) };
  }
}

/**
 * One request on a connection of its own, as a client without keep-alive sends it: what is measured is the API's
 * answer, never a client-side race with a keep-alive socket the server is closing.
 */
export function send(
  baseUrl: string,
  method: string,
  route: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; retryAfter: string | null; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}${route}`, { method, headers, agent: false, timeout: NO_ANSWER_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] ?? null, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${NO_ANSWER_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

let owner: string | undefined;
function ownerAddress(stack: StallStack): string {
  owner ??= PublicKey.fromString(stack.pool.kms.keys.ensure('owner-stall').pubKeyHex).toAddress('testnet');
  return owner;
}

export interface StallRun {
  /** `none`: the same load with nothing frozen, the control run beside the stalls. */
  service: StalledService | 'none';
  answers: ProbeAnswer[];
  /** Per probe, how long after SIGCONT its healthy answer came back. */
  recoveryMs: Record<ProbeName, number>;
  /** Registrations tried during the stall, by uid; each is retried after it until it is accepted. */
  registrations: string[];
  rssBeforeMiB: number;
  rssAfterMiB: number;
}

const HEALTHY: Record<ProbeName, number> = { verify: 200, register: 202, svdBegin: 200, ready: 200 };

/**
 * Freezes `service` for `stallMs` under a small load (`concurrency` loops per probe, loopback only), thaws it, and
 * measures how long each probe takes to answer healthily again; then re-sends every registration that was not
 * accepted during the stall, with the same Idempotency-Key, until it is.
 */
export async function runStall(
  stack: StallStack,
  service: StalledService | 'none',
  options: { stallMs: number; concurrency: number },
): Promise<StallRun> {
  const rssBeforeMiB = stack.apiRssMiB();
  const answers: ProbeAnswer[] = [];
  const registrations: string[] = [];
  const pending = new Set<string>();
  let sequence = 0;
  if (service !== 'none') stack.freeze(service);
  const until = performance.now() + options.stallMs;
  const loop = async (name: ProbeName) => {
    while (performance.now() < until) {
      const uid = name === 'register' ? `STALL-${service}-${sequence++}-${randomBytes(2).toString('hex')}` : undefined;
      const answer = await probe(stack, name, uid);
      answers.push(answer);
      if (uid) {
        registrations.push(uid);
        if (answer.status !== 202) pending.add(uid);
      }
      // A small load: a client that backs off a little between requests.
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await Promise.all(PROBE_NAMES.flatMap((name) => Array.from({ length: options.concurrency }, () => loop(name))));
  } finally {
    if (service !== 'none') stack.thaw(service);
  }
  const thawedAt = performance.now();
  const recoveryMs = {} as Record<ProbeName, number>;
  await Promise.all(
    PROBE_NAMES.map(async (name) => {
      let last: ProbeAnswer | undefined;
      await waitUntil(`${STALL_CONTRACT[name].label} to recover after ${service} (last: ${last?.status})`, 30_000, async () => {
        const uid = name === 'register' ? `RECOVER-${service}-${randomBytes(3).toString('hex')}` : undefined;
        const answer = (last = await probe(stack, name, uid));
        if (uid) {
          registrations.push(uid);
          if (answer.status !== 202) pending.add(uid);
        }
        return answer.status === HEALTHY[name];
      });
      recoveryMs[name] = performance.now() - thawedAt;
    }),
  );
  for (const uid of pending) {
    await waitUntil(
      `the retried registration of ${uid} to be accepted`,
      30_000,
      async () => (await probe(stack, 'register', uid)).status === 202,
    );
  }
  return { service, answers, recoveryMs, registrations, rssBeforeMiB, rssAfterMiB: stack.apiRssMiB() };
}

/** Lost: a registration with no record once the worker caught up. Duplicated: a uid with more than one workflow run. */
export async function registrationOutcome(stack: StallStack, uids: string[]): Promise<{ lost: string[]; duplicated: string[] }> {
  const { mongo, temporal } = stack.pool.deps;
  const lost: string[] = [];
  const duplicated: string[] = [];
  await waitUntil('every registration record to be written', 60_000, async () => {
    const found = await patchModel(mongo)
      .find({ _id: { $in: uids } }, { _id: 1 })
      .lean();
    return found.length === uids.length;
  }).catch(() => undefined);
  const found = new Set(
    (
      await patchModel(mongo)
        .find({ _id: { $in: uids } }, { _id: 1 })
        .lean()
    ).map((p) => String(p._id)),
  );
  for (const uid of uids) {
    if (!found.has(uid)) lost.push(uid);
    const { count } = await temporal.workflow.count(`WorkflowId = '${registrationWorkflowId(uid)}'`);
    if (count !== 1) duplicated.push(uid);
  }
  return { lost, duplicated };
}

/** The table of the issue: per frozen service and probe, the slowest answer and the statuses seen. */
export function stallTable(runs: StallRun[]): string {
  const header = ['frozen', ...PROBE_NAMES.map((n) => `${STALL_CONTRACT[n].label} (budget ${STALL_CONTRACT[n].budgetMs / 1000} s)`)];
  const rows = runs.map((run) => [
    run.service,
    ...PROBE_NAMES.map((name) => {
      const answers = run.answers.filter((a) => a.probe === name);
      const statuses = [...new Set(answers.map((a) => (a.status === 0 ? 'no answer' : String(a.status))))].sort().join('/');
      const max = Math.max(...answers.map((a) => a.ms));
      return `${statuses} in ≤ ${fmt(max)} (n=${answers.length}; back ${fmt(run.recoveryMs[name])} after SIGCONT)`;
    }),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const fmt = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);

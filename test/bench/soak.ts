/**
 * Soak: mixed load on the built code (`node dist/api/server.js` and `node dist/workers/main.js`, each its own
 * process) against the real stack (Temporal dev server, FerretDB or mongod, Redis, dev KMS and chain simulator) for
 * --minutes (30 by default): registrations, verifications, SVD logins and transfers at steady rates, while the pool's
 * top-up and sweep schedules fire on short intervals (UTXO_TOPUP_EVERY=1m, UTXO_SWEEP_CRON every 2 minutes).
 * Every minute it prints, per route, the requests, their p99 (client side) and errors, and the resident memory of
 * each process. At the end: every error, the schedules' runs and how they ended, and each process's RSS growth after
 * warm-up (the first fifth of the run, at least one minute). Goal: 0 errors and RSS growth < 10 %.
 * An error is an unexpected status or a failed request, a registration or transfer whose workflow failed or did not
 * finish within 3 minutes, and a scheduled top-up or sweep that did not complete.
 * Run: npm run build && npm run soak -- [--minutes 30]
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { PrivateKey } from '@bsv/sdk';
import type { Client } from '@temporalio/client';
import { Types } from 'mongoose';
import { POOL_SCHEDULE_IDS } from '../../src/pool/ids';
import { startSync, waitForPoolOperation } from '../../src/pool/launch';
import { patchModel } from '../../src/registration/models';
import { signOwnerMessage } from '../../src/sdk/ownerSigning';
import { SvdClient } from '../../src/sdk/svdClient';
import { requireBuiltCode, rssMb, startBuiltApi, trackBuilt, type BuiltProcess } from '../support/bench';
import globalSetup, { type TestStackState } from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { bindAddressBody, newNonce, registrationBody } from '../support/patchApi';
import { startMainWorkerProcess, startPoolStack, type PoolStack } from '../support/poolStack';
import { REPO_ROOT } from '../support/processes';
import { ownerAuthTestEnv } from '../support/stack';

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    /** Requests per second of each kind. */
    'verify-rate': { type: 'string', default: '5' },
    'login-rate': { type: 'string', default: '2' },
    'register-rate': { type: 'string', default: '0.5' },
    'transfer-rate': { type: 'string', default: '0.1' },
  },
});
const minutes = Number(flags.minutes);
if (!(minutes > 0)) throw new Error('--minutes must be a positive number');
const rates = {
  verify: Number(flags['verify-rate']),
  login: Number(flags['login-rate']),
  register: Number(flags['register-rate']),
  transfer: Number(flags['transfer-rate']),
};
const WARM_UP_MINUTES = Math.max(1, Math.round(minutes / 5));
/** A registration or transfer not finished after this long counts as an error. */
const FINISH_WITHIN_MS = 180_000;

const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Route = 'POST /v1/patches' | 'GET verify' | 'SVD login' | 'POST transfers' | 'GET /v1/transfers/:id';
const ROUTES: Route[] = ['POST /v1/patches', 'GET verify', 'SVD login', 'POST transfers', 'GET /v1/transfers/:id'];

/** Latencies and errors of the current minute, and every error of the run. */
class Recorder {
  minute = new Map<Route, { ms: number[]; errors: number }>();
  totals = new Map<Route, { requests: number; errors: number }>();
  errors: string[] = [];
  /** Errors after the warm-up, the ones the goal counts. */
  afterWarmUp: string[] = [];
  warm = false;

  ok(route: Route, ms: number): void {
    this.slot(route).ms.push(ms);
    this.total(route).requests += 1;
  }

  fail(route: Route | 'workflow' | 'schedule', what: string): void {
    if (route !== 'workflow' && route !== 'schedule') {
      this.slot(route).errors += 1;
      this.total(route).requests += 1;
      this.total(route).errors += 1;
    }
    this.errors.push(`${new Date().toISOString()} ${route}: ${what}`);
    if (this.warm) this.afterWarmUp.push(this.errors[this.errors.length - 1]!);
    if (this.errors.length <= 20) process.stderr.write(`[soak] error: ${route}: ${what}\n`);
  }

  private slot(route: Route) {
    let slot = this.minute.get(route);
    if (!slot) this.minute.set(route, (slot = { ms: [], errors: 0 }));
    return slot;
  }

  private total(route: Route) {
    let total = this.totals.get(route);
    if (!total) this.totals.set(route, (total = { requests: 0, errors: 0 }));
    return total;
  }
}

/** `action`, tried up to 5 times a second apart; the last failure is thrown. */
async function retried<T>(what: string, action: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (err) {
      if (attempt >= 5) throw err;
      process.stderr.write(`[soak] ${what}: attempt ${attempt} failed (${describeError(err)}), retrying\n`);
      await sleep(1000);
    }
  }
}

/** An error's message with its cause's (fetch failures carry the socket error there). */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause ? `${err.message} (${cause.code ?? cause.message ?? 'no detail'})` : err.message;
}

function p99(samples: number[]): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!;
}

interface Owner {
  userId: string;
  /** The SVD master key (the PMC's private key): each login signs with it. */
  pmcPrivHex: string;
  /** The key of the owner's bound address: transfers are signed with it. */
  privHex: string;
  address: string;
}

interface Patch {
  uid: string;
  owner: number;
  registeredAt: number;
  anchored: boolean;
  /** A transfer of it is under way. */
  busy: boolean;
}

/** Runs `action` `perSecond` times a second, each call on its own (a slow answer does not slow the rate). */
function atRate(perSecond: number, until: () => boolean, action: () => Promise<void>): Promise<void> {
  if (perSecond <= 0) return Promise.resolve();
  const intervalMs = 1000 / perSecond;
  const inFlight = new Set<Promise<void>>();
  return (async () => {
    const began = performance.now();
    for (let i = 0; !until(); i++) {
      const wait = began + i * intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      if (until()) break;
      const call = action().finally(() => inFlight.delete(call));
      inFlight.add(call);
    }
    await Promise.all(inFlight);
  })();
}

async function main(): Promise<void> {
  requireBuiltCode();
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const services = (globalThis as TestStackState).__patchproofServices ?? [];
  let stack: PoolStack | undefined;
  let api: BuiltProcess | undefined;
  let worker: BuiltProcess | undefined;
  try {
    const overrides = {
      LOG_LEVEL: 'warn',
      ANCHOR_CONFIRMATIONS: '1',
      UTXO_MIN_POOL: '40',
      UTXO_CONFIRMATION_POLL_SECONDS: '2',
      PUBLIC_API_MAX: '100000000',
      ADMIN_API_MAX: '100000000',
      SVD_RATE_MAX_PER_IP: '100000000',
      SVD_RATE_MAX_PER_USER: '100000000',
    };
    stack = await startPoolStack(overrides, { blockIntervalMs: 1000, inProcessWorker: false });
    const schedules = { UTXO_TOPUP_EVERY: '1m', UTXO_SWEEP_CRON: '*/2 * * * *' };
    // Large funding outputs: the scheduled top-up splits them into pool outputs as the run spends them.
    for (let i = 0; i < 30; i++) await stack.fund(stack.accounts.funding.address, 1_000_000 + i);

    const workerChild = await startMainWorkerProcess(
      stack,
      { ...overrides, ...schedules, WORKFLOW_BUNDLE_PATH: path.join(REPO_ROOT, 'dist', 'workflow-bundle.js') },
      'dist/workers/main.js',
    );
    worker = trackBuilt(workerChild);
    // The pool learns the funding outputs from the chain, as an operator's first sync does.
    const sync = await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test');
    await waitForPoolOperation(stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 500 });
    const { config } = stack.deps;
    api = await startBuiltApi({
      ...stack.env,
      ...ownerAuthTestEnv(),
      ...overrides,
      NODE_ENV: 'development',
      LOG_FORMAT: 'json',
      MONGODB_URI: config.mongo.uri,
      REDIS_URL: config.redis.url,
      TEMPORAL_ADDRESS: config.temporal.address,
      TEMPORAL_NAMESPACE: config.temporal.namespace,
      API_KEY: config.auth.apiKey,
      VERIFY_CACHE_SECONDS: '0',
      // The schedules are the worker's; the API's copy of the settings stays off.
      UTXO_TOPUP_EVERY: 'off',
      UTXO_SWEEP_CRON: 'off',
      UTXO_RECONCILE_EVERY: 'off',
      BACKUP_CRON: 'off',
      BACKUP_RESTORE_CHECK_CRON: 'off',
      HISTORY_ARCHIVE_EVERY: 'off',
    });
    await soak(stack, api, worker, services);
  } finally {
    await api?.stop();
    await worker?.stop();
    await stack?.close();
    await globalTeardown();
  }
}

async function soak(stack: PoolStack, api: BuiltProcess, worker: BuiltProcess, services: { name: string; pid: number }[]): Promise<void> {
  const apiKey = stack.deps.config.auth.apiKey;
  const svd = new SvdClient({ baseUrl: api.url });
  const rec = new Recorder();
  const patches: Patch[] = [];
  const patchesModel = patchModel(stack.deps.mongo);

  const timed = async (route: Route, expected: number, call: () => Promise<Response>): Promise<Response | undefined> => {
    const started = performance.now();
    try {
      const res = await call();
      const text = await res.text();
      if (res.status !== expected) {
        rec.fail(route, `status ${res.status}: ${text.slice(0, 200)}`);
        return undefined;
      }
      rec.ok(route, performance.now() - started);
      return new Response(text, { status: res.status });
    } catch (err) {
      rec.fail(route, describeError(err));
      return undefined;
    }
  };

  const owners: Owner[] = [];
  // Set-up, before the measured load: on a busy machine a first call can miss a limiter's deadline (503), so each
  // owner's set-up is retried.
  for (let i = 0; i < 8; i++) owners.push(await retried(`owner ${i} set-up`, () => newOwner()));

  async function newOwner(): Promise<Owner> {
    const pmc = PrivateKey.fromRandom();
    const priv = PrivateKey.fromRandom();
    const owner: Owner = {
      userId: new Types.ObjectId().toHexString(),
      pmcPrivHex: pmc.toHex(),
      privHex: priv.toHex(),
      address: priv.toPublicKey().toAddress('testnet'),
    };
    const registered = await fetch(`${api.url}/api/svd/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
      body: JSON.stringify({ userId: owner.userId, pmcHex: pmc.toPublicKey().toString() }),
    });
    if (registered.status !== 201) throw new Error(`SVD register: ${registered.status} ${await registered.text()}`);
    const { token } = await svd.login(owner.userId, owner.pmcPrivHex);
    const bound = await fetch(`${api.url}/v1/owner/addresses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(bindAddressBody(owner, owner.privHex)),
    });
    if (bound.status !== 201) throw new Error(`bind address: ${bound.status} ${await bound.text()}`);
    return owner;
  }

  const login = async (owner: Owner): Promise<string | undefined> => {
    const started = performance.now();
    try {
      const { token } = await svd.login(owner.userId, owner.pmcPrivHex);
      rec.ok('SVD login', performance.now() - started);
      return token;
    } catch (err) {
      rec.fail('SVD login', describeError(err));
      return undefined;
    }
  };

  const tag = Date.now().toString(36);
  let registrations = 0;
  const register = async () => {
    const uid = `SOAK-${tag}-${registrations++}`;
    const owner = registrations % owners.length;
    const res = await timed('POST /v1/patches', 202, () =>
      fetch(`${api.url}/v1/patches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
        body: JSON.stringify(registrationBody(uid, owners[owner]!.address)),
      }),
    );
    if (res) patches.push({ uid, owner, registeredAt: Date.now(), anchored: false, busy: false });
  };

  const anchoredPatch = (): Patch | undefined => {
    const anchored = patches.filter((p) => p.anchored);
    return anchored[Math.floor(Math.random() * anchored.length)];
  };

  const verify = async () => {
    const patch = anchoredPatch();
    if (!patch) return;
    await timed('GET verify', 200, () => fetch(`${api.url}/v1/patches/${encodeURIComponent(patch.uid)}/verify`));
  };

  const transfer = async () => {
    const patch = patches.find((p) => p.anchored && !p.busy);
    if (!patch) return;
    patch.busy = true;
    const from = owners[patch.owner]!;
    const toIndex = (patch.owner + 1 + Math.floor(Math.random() * (owners.length - 1))) % owners.length;
    const to = owners[toIndex]!;
    try {
      const token = await login(from);
      if (!token) return;
      const head = (await patchesModel.findById(patch.uid, { head: 1 }).lean())?.head?.txid;
      if (!head) return rec.fail('workflow', `${patch.uid} is anchored but has no head`);
      const message = {
        purpose: 'patchproof.transfer' as const,
        uid: patch.uid,
        headTxid: head,
        newOwner: to.address,
        nonce: newNonce(),
        expiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
      };
      const { pubKeyHex, signatureDerHex } = signOwnerMessage(from.privHex, message);
      const accepted = await timed('POST transfers', 202, () =>
        fetch(`${api.url}/v1/patches/${encodeURIComponent(patch.uid)}/transfers`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({
            newOwner: to.address,
            headTxid: head,
            nonce: message.nonce,
            expiresAt: message.expiresAt,
            ownerPubKey: pubKeyHex,
            ownerSignature: signatureDerHex,
          }),
        }),
      );
      if (!accepted) return;
      const { transferId } = (await accepted.json()) as { transferId: string };
      const deadline = Date.now() + FINISH_WITHIN_MS;
      for (;;) {
        await sleep(1000);
        const res = await timed('GET /v1/transfers/:id', 200, () => fetch(`${api.url}/v1/transfers/${encodeURIComponent(transferId)}`));
        const state = res ? ((await res.json()) as { state: string; lastError?: string }) : undefined;
        if (state?.state === 'completed') {
          patch.owner = toIndex;
          return;
        }
        if (state?.state === 'failed') return rec.fail('workflow', `transfer ${transferId} failed: ${state.lastError ?? ''}`);
        if (Date.now() > deadline) return rec.fail('workflow', `transfer ${transferId} not finished after ${FINISH_WITHIN_MS / 1000} s`);
      }
    } finally {
      patch.busy = false;
    }
  };

  /** Marks anchored registrations; a failed one, or one pending too long, is an error. */
  const followRegistrations = async (until: () => boolean) => {
    while (!until()) {
      const pending = patches.filter((p) => !p.anchored);
      if (pending.length > 0) {
        const docs = await patchesModel.find({ _id: { $in: pending.map((p) => p.uid) } }, { status: 1, lastError: 1 }).lean();
        const byUid = new Map(docs.map((d) => [String(d._id), d]));
        for (const patch of pending) {
          const doc = byUid.get(patch.uid);
          if (doc?.status === 'anchored') patch.anchored = true;
          else if (doc?.status === 'failed') {
            rec.fail('workflow', `registration ${patch.uid} failed: ${String(doc.lastError)}`);
            patches.splice(patches.indexOf(patch), 1);
          } else if (Date.now() - patch.registeredAt > FINISH_WITHIN_MS) {
            rec.fail(
              'workflow',
              `registration ${patch.uid} not anchored after ${FINISH_WITHIN_MS / 1000} s (${doc?.status ?? 'no record'})`,
            );
            patches.splice(patches.indexOf(patch), 1);
          }
        }
      }
      await sleep(1000);
    }
  };

  const processes: { name: string; rss: () => number }[] = [
    { name: 'api', rss: () => api.rssMb() },
    { name: 'worker', rss: () => worker.rssMb() },
    { name: 'bench (kms, simulator)', rss: () => process.memoryUsage().rss / 2 ** 20 },
    ...services.filter((s) => s.pid !== process.pid).map((s) => ({ name: s.name, rss: () => rssMb(s.pid) })),
  ];
  const rssRows: number[][] = [];

  say(
    `soak: ${minutes} min on the built API and worker; per second: ${rates.register} registrations, ${rates.verify} verifies, ` +
      `${rates.login} SVD logins, ${rates.transfer} transfers; top-up every minute, sweep every 2 minutes; warm-up ${WARM_UP_MINUTES} min`,
  );
  say(`processes: ${processes.map((p) => p.name).join(', ')}`);

  const endAt = Date.now() + minutes * 60_000;
  const until = () => Date.now() >= endAt;
  const loads = Promise.all([
    atRate(rates.register, until, register),
    atRate(rates.verify, until, verify),
    atRate(rates.login, until, async () => void (await login(owners[Math.floor(Math.random() * owners.length)]!))),
    atRate(rates.transfer, until, transfer),
    followRegistrations(until),
  ]);

  for (let minute = 1; minute <= minutes; minute++) {
    await sleep(Math.max(0, endAt - (minutes - minute) * 60_000 - Date.now()));
    const routes = ROUTES.map((route) => {
      const slot = rec.minute.get(route) ?? { ms: [], errors: 0 };
      return `${route} ${slot.ms.length}/${slot.errors}e p99 ${Number.isNaN(p99(slot.ms)) ? '-' : p99(slot.ms).toFixed(0)}ms`;
    });
    rec.minute = new Map();
    const rss = processes.map((p) => p.rss());
    rssRows.push(rss);
    const anchored = patches.filter((p) => p.anchored).length;
    const pool = await fetch(`${api.url}/v1/admin/utxo-health`, { headers: { 'x-api-key': apiKey } })
      .then(async (res) => ((await res.json()) as { db?: { available?: { count?: number } } }).db?.available?.count ?? '?')
      .catch(() => '?');
    say(
      `[min ${String(minute).padStart(2)}] ${routes.join(' | ')} | anchored ${anchored}/${registrations} | pool ${pool} | errors ${rec.errors.length}`,
    );
    say(`         RSS MB: ${processes.map((p, i) => `${p.name} ${rss[i]!.toFixed(0)}`).join(', ')}`);
    if (minute === WARM_UP_MINUTES) rec.warm = true;
  }
  await loads;
  await finishChecks(stack.deps.temporal, rec);

  say('\nroute totals (requests / errors):');
  for (const [route, total] of rec.totals)
    say(`  ${route.padEnd(24)}${String(total.requests).padStart(8)}${String(total.errors).padStart(6)}`);
  const base = rssRows[Math.min(WARM_UP_MINUTES, rssRows.length) - 1]!;
  const last = rssRows[rssRows.length - 1]!;
  say(`\nRSS growth after warm-up (minute ${Math.min(WARM_UP_MINUTES, rssRows.length)} → ${rssRows.length}):`);
  for (const [i, p] of processes.entries()) {
    const growth = ((last[i]! - base[i]!) / base[i]!) * 100;
    say(
      `  ${p.name.padEnd(24)}${base[i]!.toFixed(0).padStart(6)} → ${last[i]!.toFixed(0).padStart(6)} MB  ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} %`,
    );
  }
  say(`\nerrors: ${rec.errors.length} (${rec.afterWarmUp.length} after the warm-up)`);
  for (const line of rec.errors.slice(0, 30)) say(`  ${line}`);
  if (rec.errors.length > 30) say(`  … and ${rec.errors.length - 30} more`);
  if (rec.afterWarmUp.length > 0) say('after the warm-up:');
  for (const line of rec.afterWarmUp.slice(0, 50)) say(`  ${line}`);
  process.exitCode = rec.errors.length > 0 ? 1 : 0;
}

/** The schedules' runs: each must have completed (the last one may still be running). */
async function finishChecks(client: Client, rec: Recorder): Promise<void> {
  for (const scheduleId of [POOL_SCHEDULE_IDS.topUp, POOL_SCHEDULE_IDS.sweep]) {
    const description = await client.schedule.getHandle(scheduleId).describe();
    // Temporal keeps the last 10 actions of a schedule: those are the runs checked.
    const runs = description.info.recentActions;
    const outcomes = new Map<string, number>();
    for (const action of runs) {
      const { workflowId, firstExecutionRunId } = action.action.workflow;
      let status: string = (await client.workflow.getHandle(workflowId, firstExecutionRunId).describe()).status.name;
      if (status === 'RUNNING') {
        status = await Promise.race([
          client.workflow
            .getHandle(workflowId, firstExecutionRunId)
            .result()
            .then(() => 'COMPLETED')
            .catch(() => 'FAILED'),
          sleep(60_000).then(() => 'RUNNING'),
        ]);
      }
      outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
      if (status !== 'COMPLETED') rec.fail('schedule', `${scheduleId} run ${workflowId} ended ${status}`);
    }
    say(
      `${scheduleId}: ${description.info.numActionsTaken} runs; the last ${runs.length}: ` +
        `${[...outcomes].map(([s, n]) => `${n} ${s.toLowerCase()}`).join(', ') || 'none'}`,
    );
    if (description.info.numActionsTaken === 0) rec.fail('schedule', `${scheduleId} never fired`);
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

/**
 * Restarting each dependency (Temporal dev server, the database, Redis) of a private stack (stallStack.ts, started
 * restartable with the main worker as its own process) while registrations are in flight: what the API answers
 * meanwhile, how soon everything is back without restarting a process, and whether every registration is anchored
 * exactly once. Used by test/integration/dependency-restarts.test.ts and test/bench/restarts.ts (`npm run restarts`).
 */
import { randomBytes } from 'node:crypto';
import { PrivateKey, Transaction } from '@bsv/sdk';
import { Types } from 'mongoose';
import { parseAnchorScript } from '../../src/anchoring/anchorScript';
import { verifyMerkleProof } from '../../src/anchoring/merkle';
import { utxoModel } from '../../src/pool/models';
import { registrationWorkflowId } from '../../src/registration/ids';
import { patchModel } from '../../src/registration/models';
import { SvdClient } from '../../src/sdk/svdClient';
import { fundAndSyncPool, registrationBody } from './patchApi';
import { send, startStallStack, waitUntil, type StallStack, type StalledService } from './stallStack';
import { isPolling } from './workerProcesses';

export type RestartedService = StalledService;
export const RESTARTED_SERVICES: RestartedService[] = ['temporal', 'mongo', 'redis'];

/** What the stack is started with: quick blocks and batches, so a registration is anchored within seconds. */
export async function startRestartStack(): Promise<RestartStack> {
  const stack = await startStallStack({
    restartable: true,
    workerProcess: true,
    blockIntervalMs: 300,
    env: { ANCHOR_CONFIRMATIONS: '1', ANCHOR_BATCH_MAX_WAIT_SECONDS: '1' },
  });
  try {
    // Enough outputs for every batch of every round: a batch spends one and its change comes back to the pool.
    await fundAndSyncPool(stack.pool, 20, 1_000_000);
    const pmc = PrivateKey.fromRandom();
    const userId = new Types.ObjectId().toHexString();
    const registered = await fetch(`${stack.apiUrl}/api/svd/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': stack.pool.deps.config.auth.apiKey },
      body: JSON.stringify({ userId, pmcHex: pmc.toPublicKey().toString() }),
    });
    if (registered.status !== 201) throw new Error(`SVD register: ${registered.status} ${await registered.text()}`);
    const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');
    return { stack, svdUser: { userId, pmcHex: pmc.toHex() }, owner };
  } catch (err) {
    await stack.close();
    throw err;
  }
}

export interface RestartStack {
  stack: StallStack;
  /** An owner registered for SVD login before any restart. */
  svdUser: { userId: string; pmcHex: string };
  /** The address registrations name as owner. */
  owner: string;
}

/** One /ready answer during an outage: its status and what it said of the restarted service. */
interface ReadyAnswer {
  status: number;
  check: string;
}

export interface RestartRun {
  service: RestartedService;
  /** From the stop signal until the service accepted connections again. */
  downtimeMs: number;
  /** Registrations sent (each uid once, retried with its Idempotency-Key until accepted). */
  sent: number;
  accepted: number;
  anchored: number;
  /** Accepted, but without an anchored record once the worker caught up. */
  lost: string[];
  /** More than one registration workflow run, or committed to by more than one anchor transaction. */
  duplicated: string[];
  /** Registrations sent before the stop and not yet anchored when it came: the ones the restart caught in flight. */
  inFlightAtStop: number;
  /** Statuses of registration attempts while the service was down. */
  registerDuring: number[];
  /** Requests (registrations, during and after the outage) that got no answer, and why. */
  noAnswer: string[];
  readyDuring: ReadyAnswer[];
  /** Statuses of SVD logins (begin + complete) while the service was down; 0 is no answer. */
  svdLoginDuring: number[];
  /** The first 503 of an SVD login while down, with its Retry-After. */
  svdRetryAfter: string | null;
  /** From the service accepting connections until /ready, an SVD login and a new registration all succeeded. */
  recoveryMs: number;
  /** Per process (API, worker): whether it is still the process that was running before the restart. */
  processes: { api: boolean; worker: boolean };
  /** Whether the worker polls its task queue again once the service is back. */
  workerPolling: boolean;
  /** UTXOs still reserved once every registration of the run is anchored. */
  reservedUtxos: number;
  /** Records the anchor transactions on the chain commit to, against the records anchored (the whole stack). */
  chain: { committed: number; anchored: number };
}

const REGISTER_CLIENTS = 8;
const PROBE_INTERVAL_MS = 250;

/**
 * Sends `registrations` registrations (REGISTER_CLIENTS at a time; a client re-sends one that was not accepted with
 * the same Idempotency-Key after a short pause): a third, then stops `service` while their workflows are in flight,
 * sends the next third while it is down and keeps it down for `downtimeMs` while probing /ready and SVD login, starts
 * it again on the same port with the same data, sends the last third, then measures recovery and counts what became
 * of every registration.
 */
export async function runRestart(
  setup: RestartStack,
  service: RestartedService,
  options: { registrations: number; downtimeMs: number; anchorTimeoutMs: number },
): Promise<RestartRun> {
  const { stack } = setup;
  const apiPid = stack.api.pid;
  const workerPid = stack.worker?.child.pid;
  const uids = Array.from({ length: options.registrations }, (_, i) => `RESTART-${service}-${String(i).padStart(3, '0')}-${hex()}`);
  const accepted = new Set<string>();
  let down = false;
  const registerDuring: number[] = [];
  const noAnswer: string[] = [];
  /** Sends `batch` REGISTER_CLIENTS at a time; each uid is re-sent with its Idempotency-Key until accepted. */
  const send = async (batch: string[]) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: REGISTER_CLIENTS }, async () => {
        for (let uid = batch[next++]; uid; uid = batch[next++]) {
          for (;;) {
            const answer = await register(setup, uid);
            if (down) registerDuring.push(answer.status);
            if (answer.error) noAnswer.push(`POST /v1/patches ${uid}: ${answer.error}`);
            if (answer.status === 202) break;
            await sleep(PROBE_INTERVAL_MS);
          }
          accepted.add(uid);
        }
      }),
    );
  };
  // A third before the stop (their workflows are in flight when it comes), a third while the service is down
  // (refused or accepted, and re-sent until accepted), a third once it is back.
  const third = Math.ceil(uids.length / 3);
  await send(uids.slice(0, third));
  const inFlightAtStop =
    accepted.size -
    (await patchModel(stack.pool.deps.mongo)
      .countDocuments({ _id: { $in: [...accepted] }, status: 'anchored' })
      .catch(() => 0));
  const stoppedAt = performance.now();
  await stack.stop(service);
  down = true;
  const sending = [send(uids.slice(third, 2 * third))];

  const readyDuring: ReadyAnswer[] = [];
  const svdLoginDuring: number[] = [];
  let svdRetryAfter: string | null = null;
  const until = performance.now() + options.downtimeMs;
  await Promise.all([
    (async () => {
      while (performance.now() < until) {
        readyDuring.push(await ready(stack, service));
        await sleep(PROBE_INTERVAL_MS);
      }
    })(),
    (async () => {
      while (performance.now() < until) {
        const login = await svdLogin(setup);
        svdLoginDuring.push(login.status);
        if (login.status === 503) svdRetryAfter ??= login.retryAfter;
        await sleep(PROBE_INTERVAL_MS);
      }
    })(),
  ]);
  await stack.start(service);
  down = false;
  const startedAt = performance.now();
  sending.push(send(uids.slice(2 * third)));
  const downtimeMs = startedAt - stoppedAt;

  let last = '';
  const recoveryMs = await waitUntil(`the API to recover after ${service} restarted`, 120_000, async () => {
    const [readiness, login, registration] = await Promise.all([
      ready(stack, service),
      svdLogin(setup),
      register(setup, `RECOVER-${service}-${hex()}`),
    ]);
    last = `/ready ${readiness.status} (${service} ${readiness.check}), SVD login ${login.status}, registration ${registration.status}`;
    return readiness.status === 200 && login.status === 200 && registration.status === 202;
  }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last: ${last}\n--- API output\n${stack.apiOutput()}`);
  });
  await Promise.all(sending);

  const outcome = await registrationOutcome(setup, uids, options.anchorTimeoutMs);
  const chain = await chainCommitments(setup);
  const workerPolling = await waitUntil('the worker to poll again', 60_000, async () =>
    stack.worker
      ? isPolling(stack.pool.deps.temporal, stack.pool.deps.config.temporal.namespace, workerPid).catch(() => false)
      : Promise.resolve(false),
  ).then(
    () => true,
    () => false,
  );
  return {
    service,
    downtimeMs,
    sent: uids.length,
    accepted: accepted.size,
    ...outcome,
    inFlightAtStop,
    registerDuring,
    noAnswer,
    readyDuring,
    svdLoginDuring,
    svdRetryAfter,
    recoveryMs,
    processes: {
      api: stack.api.pid === apiPid && stack.api.exitCode === null && stack.api.signalCode === null,
      worker: Boolean(stack.worker) && stack.worker!.child.pid === workerPid && stack.worker!.child.exitCode === null,
    },
    workerPolling,
    chain,
  };
}

/**
 * Waits until every registration has an anchored record, then counts: lost (no anchored record), duplicated (not
 * exactly one workflow run, or committed to by more than one anchor transaction on the simulated chain), and the
 * UTXOs still reserved once the pool has settled.
 */
async function registrationOutcome(
  setup: RestartStack,
  uids: string[],
  timeoutMs: number,
): Promise<Pick<RestartRun, 'anchored' | 'lost' | 'duplicated' | 'reservedUtxos'>> {
  const { mongo, temporal } = setup.stack.pool.deps;
  const patches = patchModel(mongo);
  await waitUntil('every registration to be anchored', timeoutMs, async () => {
    return (await patches.countDocuments({ _id: { $in: uids }, status: 'anchored' })) === uids.length;
  }).catch(() => undefined);
  const records = await patches.find({ _id: { $in: uids } }).lean();
  const anchoredRecords = records.filter((p) => p.status === 'anchored' && p.anchor);
  const anchoredIds = new Set(anchoredRecords.map((p) => String(p._id)));
  const lost = uids.filter((uid) => !anchoredIds.has(uid));

  // Every anchor transaction on the chain: each record it commits to proves against its root.
  const roots = new Set(anchorTransactions(setup).map((tx) => tx.root));
  for (const patch of anchoredRecords) {
    const proof = patch.anchor!.proof;
    // A record whose anchor is not on the chain, or does not prove against it, is not anchored at all.
    if (!proof || !roots.has(proof.root) || !verifyMerkleProof(patch.recordHash, proof)) lost.push(String(patch._id));
  }
  const duplicated = new Set<string>();
  for (const uid of uids) {
    const { count } = await temporal.workflow.count(`WorkflowId = '${registrationWorkflowId(uid)}'`);
    if (count !== 1) duplicated.add(uid);
  }
  let reservedUtxos = 0;
  await waitUntil('the pool to release its reservations', 30_000, async () => {
    reservedUtxos = await utxoModel(mongo).countDocuments({ status: 'reserved' });
    return reservedUtxos === 0;
  }).catch(() => undefined);
  return { anchored: anchoredIds.size, lost: [...new Set(lost)], duplicated: [...duplicated], reservedUtxos };
}

/** The anchor transactions on the simulated chain (mempool and blocks), with the root and count each commits to. */
function anchorTransactions(setup: RestartStack): { txid: string; root: string; count: number }[] {
  const found: { txid: string; root: string; count: number }[] = [];
  for (const tx of setup.stack.pool.simulator.simulator.state.toSnapshot().txs) {
    const parsed = Transaction.fromHex(tx.rawHex);
    const payload = parsed.outputs[0] && parseAnchorScript(parsed.outputs[0].lockingScript.toHex());
    if (payload) found.push({ txid: parsed.id('hex'), root: payload.root, count: payload.count });
  }
  return found;
}

/**
 * Exactly once across the whole stack: once no record waits, the anchor transactions on the chain commit to as many
 * records as are anchored. A record anchored twice (two batches, or a batch broadcast twice with different inputs)
 * makes the chain commit to more.
 */
export async function chainCommitments(setup: RestartStack, timeoutMs = 60_000): Promise<{ committed: number; anchored: number }> {
  const patches = patchModel(setup.stack.pool.deps.mongo);
  await waitUntil('every record of the stack to be anchored', timeoutMs, async () => {
    return (await patches.countDocuments({ status: { $ne: 'anchored' } })) === 0;
  }).catch(() => undefined);
  const committed = anchorTransactions(setup).reduce((sum, tx) => sum + tx.count, 0);
  return { committed, anchored: await patches.countDocuments({ status: 'anchored' }) };
}

/** One registration attempt: its status, or 0 and why there was no answer. */
async function register(setup: RestartStack, uid: string): Promise<{ status: number; error?: string }> {
  const started = performance.now();
  try {
    const headers = { 'content-type': 'application/json', 'x-api-key': setup.stack.pool.deps.config.auth.apiKey, 'idempotency-key': uid };
    const res = await send(setup.stack.apiUrl, 'POST', '/v1/patches', headers, JSON.stringify(registrationBody(uid, setup.owner)));
    return { status: res.status };
  } catch (err) {
    return { status: 0, error: `${String((err as Error).cause ?? err)} after ${Math.round(performance.now() - started)} ms` };
  }
}

async function ready(stack: StallStack, service: RestartedService): Promise<ReadyAnswer> {
  try {
    const res = await send(stack.apiUrl, 'GET', '/ready');
    const body = JSON.parse(res.body) as { checks?: Record<string, { status?: string }> };
    return { status: res.status, check: body.checks?.[service]?.status ?? 'absent' };
  } catch {
    return { status: 0, check: 'no answer' };
  }
}

/** A full SVD login, begin then complete: the status of the first step that failed, or of complete. */
async function svdLogin(setup: RestartStack): Promise<{ status: number; retryAfter: string | null }> {
  const { userId, pmcHex } = setup.svdUser;
  const post = (route: string, body: unknown) =>
    send(setup.stack.apiUrl, 'POST', route, { 'content-type': 'application/json' }, JSON.stringify(body));
  try {
    const begin = await post('/api/svd/begin', { userId });
    if (begin.status !== 200) return { status: begin.status, retryAfter: begin.retryAfter };
    const { M } = JSON.parse(begin.body) as { M: string };
    const complete = await post('/api/svd/complete', { userId, M, signatureHex: SvdClient.signChallenge(pmcHex, M) });
    return { status: complete.status, retryAfter: complete.retryAfter };
  } catch {
    return { status: 0, retryAfter: null };
  }
}

/** The table of `npm run restarts`: one row per restarted service. */
export function restartTable(runs: RestartRun[]): string {
  const header = [
    'restarted',
    'downtime',
    'in flight at stop',
    'accepted',
    'anchored',
    'lost',
    'duplicated',
    'POST /v1/patches while down',
    '/ready while down',
    'SVD login while down',
    'recovered after',
    'API / worker process',
    'reserved UTXOs after',
  ];
  const rows = runs.map((run) => [
    run.service,
    fmt(run.downtimeMs),
    String(run.inFlightAtStop),
    `${run.accepted}/${run.sent}`,
    String(run.anchored),
    String(run.lost.length),
    String(run.duplicated.length + Math.max(0, run.chain.committed - run.chain.anchored)),
    statuses(run.registerDuring),
    statuses(run.readyDuring.map((r) => `${r.status || 'no answer'} (${run.service} ${r.check})`)),
    `${statuses(run.svdLoginDuring)}${run.svdRetryAfter ? `, Retry-After ${run.svdRetryAfter}` : ''}`,
    fmt(run.recoveryMs),
    `${run.processes.api ? 'same' : 'RESTARTED'} / ${run.processes.worker ? 'same' : 'RESTARTED'}${run.workerPolling ? ', polling' : ', NOT polling'}`,
    String(run.reservedUtxos),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Distinct values with their counts, e.g. `503 ×12, 202 ×3`; `none` when nothing was sent. */
function statuses(values: (number | string)[]): string {
  if (values.length === 0) return 'none';
  const counts = new Map<string, number>();
  for (const value of values)
    counts.set(String(value === 0 ? 'no answer' : value), (counts.get(String(value === 0 ? 'no answer' : value)) ?? 0) + 1);
  return [...counts].map(([value, count]) => `${value} ×${count}`).join(', ');
}

const hex = () => randomBytes(3).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

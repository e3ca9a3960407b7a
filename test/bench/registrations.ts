/**
 * Registrations end to end on the real stack (Temporal dev server, FerretDB, Redis, dev KMS, chain simulator, the
 * production worker and API): N registrations posted at once through POST /v1/patches, in batch mode and then in
 * single mode (ANCHOR_MODE is a worker setting, so each mode gets a stack of its own, one after the other), each
 * beside a bare 1-activity workflow run on the same Temporal dev server as the baseline.
 * A registration counts as done when its anchor transaction reaches the simulator's mempool (the tx's first-seen
 * time in the simulator); the workflows are still waited for (1 confirmation) so no run leaks into the next stack.
 * Prints registrations per second and their ratio to the baseline, latency (POST → anchor tx in mempool), anchor
 * transactions, sats of fee per record (sum of the anchor txs' fees read from the simulator / records), and history
 * events per registration and per anchor batch.
 * With --seed-patches, each mode also runs on a database that already holds that many anchored patches (inserted
 * before the stack's registrations), beside the run on an empty one: the ratio shows what the data's size costs.
 * Each run then registers --low-load K more patches one at a time, each posted once the previous one is in the
 * mempool: the latency a registration sees on an idle system.
 * After each run it times GET /v1/patches/{uid}/verify for the registered uids and for unknown ones (the latter is
 * MongoDB only; the former also reads the chain service).
 * Run: npx tsx test/bench/registrations.ts [N=100] [--modes batch,single] [--seed-patches 100000] [--low-load 10]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PublicKey } from '@bsv/sdk';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createApp } from '../../api/app';
import { patchModel } from '../../src/registration/models';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { listen } from '../support/http';
import { fundAndSyncPool, registrationBody } from '../support/patchApi';
import { startPoolStack, type PoolStack } from '../support/poolStack';
import type { BaselineActivities } from './baselineWorkflow';
import { benchBaselineWorkflow } from './baselineWorkflow';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    modes: { type: 'string', default: 'batch,single' },
    'seed-patches': { type: 'string', default: '0' },
    'low-load': { type: 'string', default: '10' },
  },
});
const count = Number(positionals[0] ?? 100);
const modes = flags.modes.split(',') as ('batch' | 'single')[];
const seeds = [...new Set([0, Number(flags['seed-patches'])])];
const lowLoadCount = Number(flags['low-load']);
const BASELINE_TASK_QUEUE = 'bench-baseline';
const VERIFY_REQUESTS = 200;

interface BaselineRow {
  stack: string;
  perSecond: number;
  wallMs: number;
  historyEvents: number;
}

interface ModeRow {
  mode: 'batch' | 'single';
  seeded: number;
  verify: { anchoredP50: number; anchoredP99: number; unknownP50: number; unknownP99: number };
  perSecond: number;
  wallMs: number;
  p50Ms: number;
  p95Ms: number;
  anchorTxs: number;
  feePerRecord: number;
  eventsPerRegistration: number;
  maxEventsPerRegistration: number;
  activitiesPerRegistration: number;
  eventsPerBatch: number | null;
  batches: number;
  /** Submit → mempool of registrations posted one at a time on an idle system. */
  lowLoad: { p50Ms: number; maxMs: number; count: number };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function historyLength(stack: PoolStack, workflowId: string, runId?: string): Promise<number> {
  return (await historyShape(stack, workflowId, runId)).events;
}

async function historyShape(stack: PoolStack, workflowId: string, runId?: string): Promise<{ events: number; activities: number }> {
  const history = await stack.deps.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
  const events = history.events ?? [];
  return { events: events.length, activities: events.filter((e) => e.activityTaskScheduledEventAttributes).length };
}

/** N bare workflows started at once on a worker of their own; wall time from the first start to the last result. */
async function runBaseline(stack: PoolStack, label: string): Promise<BaselineRow> {
  const connection = await NativeConnection.connect({ address: stack.deps.config.temporal.address });
  const activities: BaselineActivities = { benchNoop: ({ index }) => Promise.resolve(index) };
  const worker = await Worker.create({
    connection,
    namespace: stack.deps.config.temporal.namespace,
    taskQueue: BASELINE_TASK_QUEUE,
    workflowsPath: path.join(__dirname, 'baselineWorkflow.ts'),
    activities,
  });
  const ids = Array.from({ length: count }, (_, i) => `bench-baseline-${label}-${Date.now().toString(36)}-${i}`);
  try {
    const began = performance.now();
    await worker.runUntil(
      Promise.all(
        ids.map((workflowId, i) =>
          stack.deps.temporal.workflow.execute(benchBaselineWorkflow, { workflowId, taskQueue: BASELINE_TASK_QUEUE, args: [i] }),
        ),
      ),
    );
    const wallMs = performance.now() - began;
    return { stack: label, perSecond: (count * 1000) / wallMs, wallMs, historyEvents: await historyLength(stack, ids[0]!) };
  } finally {
    await connection.close();
  }
}

/** Anchored patches of the stored shape, inserted directly: what a brand's earlier production runs left. */
async function seedAnchoredPatches(stack: PoolStack, total: number): Promise<void> {
  const patches = patchModel(stack.deps.mongo).collection;
  const now = new Date();
  for (let start = 0; start < total; start += 1000) {
    await patches.insertMany(
      Array.from({ length: Math.min(1000, total - start) }, (_, i) => {
        const uid = `SEED-${String(start + i).padStart(7, '0')}`;
        const hex = (n: number) => (n.toString(16).padStart(8, '0') + uid.length.toString(16)).repeat(8).slice(0, 64);
        return {
          _id: uid,
          registrationId: `registration-${uid}`,
          status: 'anchored',
          requestHash: hex(start + i),
          idempotencyKey: null,
          record: { ...registrationBody(uid, 'mkSeedOwner').product, initialOwner: 'mkSeedOwner', issuedAt: now.toISOString() },
          recordHash: hex(start + i + 1),
          issuerSignature: { signatureDerHex: `30${hex(start + i + 2)}`, pubKeyHex: `02${hex(start + i + 3)}`, keyIdentifier: 'issuer' },
          anchor: {
            txid: hex(start + i + 4),
            vout: 0,
            proof: { leaf: hex(start + i + 5), index: 0, count: 1, path: [] },
            blockHeight: 100,
          },
          owner: 'mkSeedOwner',
          head: { txid: hex(start + i + 4), recordHash: hex(start + i + 1), seq: 0 },
          lastError: null,
          createdAt: now,
          updatedAt: now,
        } as never;
      }),
      { ordered: false },
    );
  }
}

async function timeVerify(baseUrl: string, uids: string[]): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < VERIFY_REQUESTS; i++) {
    const started = performance.now();
    const res = await fetch(`${baseUrl}/v1/patches/${encodeURIComponent(uids[i % uids.length]!)}/verify`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`verify answered ${res.status}`);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

async function runRegistrations(mode: 'batch' | 'single', seeded: number): Promise<{ row: ModeRow; baseline: BaselineRow }> {
  const stack = await startPoolStack(
    {
      ANCHOR_MODE: mode,
      ANCHOR_CONFIRMATIONS: '1',
      ADMIN_API_MAX: '100000',
      PUBLIC_API_MAX: '100000',
      LOG_LEVEL: 'warn',
      WOC_REQUESTS_PER_SECOND: '1000',
    },
    { blockIntervalMs: 500 },
  );
  const api = await listen(createApp(stack.deps));
  try {
    if (seeded > 0) {
      const seedingStarted = Date.now();
      await seedAnchoredPatches(stack, seeded);
      process.stderr.write(`[bench] seeded ${seeded} anchored patches in ${Math.round((Date.now() - seedingStarted) / 1000)} s\n`);
    }
    // Single mode spends one pool output per registration; batch mode one per batch.
    await fundAndSyncPool(stack, count + lowLoadCount + 5);
    const baseline = await runBaseline(stack, mode);
    const owner = PublicKey.fromString(stack.kms.keys.ensure('bench-owner').pubKeyHex).toAddress('testnet');
    const tag = Date.now().toString(36);
    const uids = Array.from({ length: count }, (_, i) => `BENCH-${mode}-${tag}-${i}`);
    const batchesSince = new Date();

    const began = Date.now();
    const postedAt = new Map<string, number>();
    await Promise.all(
      uids.map(async (uid) => {
        postedAt.set(uid, Date.now());
        const res = await fetch(`${api.baseUrl}/v1/patches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': stack.deps.config.auth.apiKey },
          body: JSON.stringify(registrationBody(uid, owner)),
        });
        if (res.status !== 202) throw new Error(`POST ${uid}: ${res.status} ${await res.text()}`);
      }),
    );

    // Read by _id, one uid at a time: an $in filter is not pushed down by FerretDB and would scan the seeded patches.
    const patches = patchModel(stack.deps.mongo);
    const deadline = Date.now() + 600_000;
    const pending = new Set(uids);
    for (;;) {
      for (const uid of [...pending]) {
        const doc = await patches.findById(uid, { status: 1, lastError: 1 }).lean();
        if (doc?.status === 'failed') throw new Error(`registration ${uid} failed: ${doc.lastError}`);
        if (doc?.status === 'anchored') pending.delete(uid);
      }
      if (pending.size === 0) break;
      if (Date.now() > deadline) throw new Error(`${mode}: only ${count - pending.size}/${count} anchored after 10 minutes`);
      await new Promise((r) => setTimeout(r, 250));
    }

    const docs = await Promise.all(uids.map(async (uid) => (await patches.findById(uid).lean())!));
    const state = stack.simulator.simulator.state;
    const txs = new Map<string, { fee: number; firstSeenMs: number }>();
    const latencies: number[] = [];
    for (const doc of docs) {
      const txid = doc.anchor!.txid;
      const tx = txs.get(txid) ?? state.visibleTx(txid);
      if (!tx) throw new Error(`${doc._id}: anchor tx ${txid} unknown to the simulator`);
      txs.set(txid, { fee: tx.fee, firstSeenMs: tx.firstSeenMs });
      latencies.push(tx.firstSeenMs - postedAt.get(doc._id)!);
    }
    const lastSeen = Math.max(...[...txs.values()].map((t) => t.firstSeenMs));
    const wallMs = lastSeen - began;
    const fees = [...txs.values()].reduce((sum, t) => sum + t.fee, 0);

    let registrationEvents = 0;
    let registrationActivities = 0;
    let maxEventsPerRegistration = 0;
    for (const uid of uids) {
      const shape = await historyShape(stack, `registration-${uid}`);
      registrationEvents += shape.events;
      registrationActivities += shape.activities;
      maxEventsPerRegistration = Math.max(maxEventsPerRegistration, shape.events);
    }
    // Both modes anchor through batches (a batch of one per record in single mode).
    let batchEvents = 0;
    let batches = 0;
    const query = `WorkflowType = 'anchorBatchWorkflow' AND StartTime >= '${batchesSince.toISOString()}'`;
    for await (const execution of stack.deps.temporal.workflow.list({ query })) {
      batchEvents += await historyLength(stack, execution.workflowId, execution.runId);
      batches++;
    }

    const lowLoad: number[] = [];
    for (let i = 0; i < lowLoadCount; i++) {
      const uid = `BENCH-${mode}-${tag}-idle-${i}`;
      const posted = Date.now();
      const res = await fetch(`${api.baseUrl}/v1/patches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': stack.deps.config.auth.apiKey },
        body: JSON.stringify(registrationBody(uid, owner)),
      });
      if (res.status !== 202) throw new Error(`POST ${uid}: ${res.status} ${await res.text()}`);
      for (let polls = 0; ; polls++) {
        const doc = await patches.findById(uid, { status: 1, anchor: 1, lastError: 1 }).lean();
        if (doc?.status === 'failed') throw new Error(`registration ${uid} failed: ${doc.lastError}`);
        const seen = doc?.anchor?.txid ? state.visibleTx(doc.anchor.txid) : undefined;
        if (seen) {
          lowLoad.push(seen.firstSeenMs - posted);
          break;
        }
        if (polls > 6000) throw new Error(`${uid} not in the mempool after 60 s`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    lowLoad.sort((a, b) => a - b);

    latencies.sort((a, b) => a - b);
    const anchoredVerify = await timeVerify(api.baseUrl, uids);
    const unknownVerify = await timeVerify(
      api.baseUrl,
      uids.map((uid) => `${uid}-UNKNOWN`),
    );
    return {
      baseline,
      row: {
        mode,
        seeded,
        verify: {
          anchoredP50: anchoredVerify.p50,
          anchoredP99: anchoredVerify.p99,
          unknownP50: unknownVerify.p50,
          unknownP99: unknownVerify.p99,
        },
        perSecond: (count * 1000) / wallMs,
        wallMs,
        p50Ms: percentile(latencies, 50),
        p95Ms: percentile(latencies, 95),
        anchorTxs: txs.size,
        feePerRecord: fees / count,
        eventsPerRegistration: registrationEvents / count,
        maxEventsPerRegistration,
        activitiesPerRegistration: registrationActivities / count,
        eventsPerBatch: batches > 0 ? batchEvents / batches : null,
        batches,
        lowLoad: { p50Ms: lowLoad.length ? percentile(lowLoad, 50) : NaN, maxMs: lowLoad.at(-1) ?? NaN, count: lowLoad.length },
      },
    };
  } finally {
    await api.close();
    await stack.close();
  }
}

async function main(): Promise<void> {
  if (!Number.isInteger(count) || count < 1) throw new Error('N must be a whole number ≥ 1');
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const rows: ModeRow[] = [];
  const baselines: BaselineRow[] = [];
  try {
    for (const mode of modes) {
      for (const seeded of seeds) {
        const { row, baseline } = await runRegistrations(mode, seeded);
        rows.push(row);
        baselines.push(baseline);
      }
    }
  } finally {
    await globalTeardown();
  }

  const pad = (s: string | number, n: number) => String(s).padStart(n);
  say(`\n${count} registrations per run, posted at once; done = anchor tx in the simulator's mempool\n`);
  say(
    `${'mode'.padEnd(8)}${pad('seeded', 8)}${pad('reg/s', 8)}${pad('wall ms', 9)}${pad('p50 ms', 8)}${pad('p95 ms', 8)}${pad('anchor txs', 11)}` +
      `${pad('sat/record', 11)}${pad('events/reg', 11)}${pad('max ev/reg', 11)}${pad('acts/reg', 9)}${pad('events/batch', 13)}${pad('baseline/s', 11)}${pad('ratio', 7)}`,
  );
  rows.forEach((r, i) => {
    const baseline = baselines[i]!;
    say(
      `${r.mode.padEnd(8)}${pad(r.seeded, 8)}${pad(r.perSecond.toFixed(1), 8)}${pad(r.wallMs.toFixed(0), 9)}${pad(r.p50Ms.toFixed(0), 8)}${pad(r.p95Ms.toFixed(0), 8)}` +
        `${pad(r.anchorTxs, 11)}${pad(r.feePerRecord.toFixed(2), 11)}${pad(r.eventsPerRegistration.toFixed(1), 11)}` +
        `${pad(r.maxEventsPerRegistration, 11)}${pad(r.activitiesPerRegistration.toFixed(1), 9)}` +
        `${pad(r.eventsPerBatch === null ? '-' : `${r.eventsPerBatch.toFixed(1)} (${r.batches})`, 13)}` +
        `${pad(baseline.perSecond.toFixed(1), 11)}${pad((r.perSecond / baseline.perSecond).toFixed(3), 7)}`,
    );
  });
  say(`\nLow load: registrations posted one at a time, each once the previous is in the mempool; submit → mempool, ms:`);
  for (const r of rows) {
    say(
      `${r.mode.padEnd(8)}${pad(r.seeded, 8)}  p50 ${r.lowLoad.p50Ms.toFixed(0)}  max ${r.lowLoad.maxMs.toFixed(0)}  (${r.lowLoad.count} registrations)`,
    );
  }
  say(`\nGET /v1/patches/{uid}/verify, ${VERIFY_REQUESTS} requests one after another, ms:`);
  say(
    `${'mode'.padEnd(8)}${pad('seeded', 8)}${pad('anchored p50', 14)}${pad('anchored p99', 14)}${pad('unknown p50', 13)}${pad('unknown p99', 13)}`,
  );
  for (const r of rows) {
    say(
      `${r.mode.padEnd(8)}${pad(r.seeded, 8)}${pad(r.verify.anchoredP50.toFixed(1), 14)}${pad(r.verify.anchoredP99.toFixed(1), 14)}` +
        `${pad(r.verify.unknownP50.toFixed(1), 13)}${pad(r.verify.unknownP99.toFixed(1), 13)}`,
    );
  }
  say(
    `\nbaseline: ${count} bare 1-activity workflows started at once on the same dev server, ${baselines.map((b) => `${b.perSecond.toFixed(1)}/s (${b.historyEvents} events) beside ${b.stack}`).join(', ')}`,
  );
  for (const mode of modes) {
    const empty = rows.find((r) => r.mode === mode && r.seeded === 0);
    const full = rows.find((r) => r.mode === mode && r.seeded > 0);
    if (empty && full) {
      say(
        `${mode}: with ${full.seeded} patches stored, ${(full.perSecond / empty.perSecond).toFixed(2)}x the registrations/s of an empty database; ` +
          `verify p99 ${(full.verify.anchoredP99 / empty.verify.anchoredP99).toFixed(2)}x (anchored), ${(full.verify.unknownP99 / empty.verify.unknownP99).toFixed(2)}x (unknown)`,
      );
    }
  }
  const batch = rows.find((r) => r.mode === 'batch' && r.seeded === 0);
  const single = rows.find((r) => r.mode === 'single' && r.seeded === 0);
  if (batch && single) {
    say(
      `batch vs single in this run: ${(batch.perSecond / single.perSecond).toFixed(2)}x registrations/s, ` +
        `${(batch.feePerRecord / single.feePerRecord).toFixed(3)}x fee per record`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

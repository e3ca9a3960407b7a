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
 * Run: npx tsx test/bench/registrations.ts [N=100]
 */
import path from 'node:path';
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

const count = Number(process.argv[2] ?? 100);
const BASELINE_TASK_QUEUE = 'bench-baseline';

interface BaselineRow {
  stack: string;
  perSecond: number;
  wallMs: number;
  historyEvents: number;
}

interface ModeRow {
  mode: 'batch' | 'single';
  perSecond: number;
  wallMs: number;
  p50Ms: number;
  p95Ms: number;
  anchorTxs: number;
  feePerRecord: number;
  eventsPerRegistration: number;
  eventsPerBatch: number | null;
  batches: number;
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function historyLength(stack: PoolStack, workflowId: string, runId?: string): Promise<number> {
  const history = await stack.deps.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
  return history.events?.length ?? 0;
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

async function runRegistrations(mode: 'batch' | 'single'): Promise<{ row: ModeRow; baseline: BaselineRow }> {
  const stack = await startPoolStack(
    { ANCHOR_MODE: mode, ANCHOR_CONFIRMATIONS: '1', ADMIN_API_MAX: '100000', PUBLIC_API_MAX: '100000', LOG_LEVEL: 'warn' },
    { blockIntervalMs: 500 },
  );
  const api = await listen(createApp(stack.deps));
  try {
    // Single mode spends one pool output per registration; batch mode one per batch.
    await fundAndSyncPool(stack, count + 5);
    const baseline = await runBaseline(stack, mode);
    const owner = PublicKey.fromString(stack.kms.keys.describe('bench-owner').pubKeyHex).toAddress('testnet');
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

    const patches = patchModel(stack.deps.mongo);
    const deadline = Date.now() + 600_000;
    for (;;) {
      const anchored = await patches.countDocuments({ _id: { $in: uids }, status: 'anchored' });
      const failed = await patches.find({ _id: { $in: uids }, status: 'failed' }).lean();
      if (failed.length > 0) throw new Error(`${failed.length} registrations failed, e.g. ${failed[0]!._id}: ${failed[0]!.lastError}`);
      if (anchored === count) break;
      if (Date.now() > deadline) throw new Error(`${mode}: only ${anchored}/${count} anchored after 10 minutes`);
      await new Promise((r) => setTimeout(r, 250));
    }

    const docs = await patches.find({ _id: { $in: uids } }).lean();
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
    for (const uid of uids) registrationEvents += await historyLength(stack, `registration-${uid}`);
    let batchEvents = 0;
    let batches = 0;
    if (mode === 'batch') {
      const query = `WorkflowType = 'anchorBatchWorkflow' AND StartTime >= '${batchesSince.toISOString()}'`;
      for await (const execution of stack.deps.temporal.workflow.list({ query })) {
        batchEvents += await historyLength(stack, execution.workflowId, execution.runId);
        batches++;
      }
    }

    latencies.sort((a, b) => a - b);
    return {
      baseline,
      row: {
        mode,
        perSecond: (count * 1000) / wallMs,
        wallMs,
        p50Ms: percentile(latencies, 50),
        p95Ms: percentile(latencies, 95),
        anchorTxs: txs.size,
        feePerRecord: fees / count,
        eventsPerRegistration: registrationEvents / count,
        eventsPerBatch: batches > 0 ? batchEvents / batches : null,
        batches,
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
    for (const mode of ['batch', 'single'] as const) {
      const { row, baseline } = await runRegistrations(mode);
      rows.push(row);
      baselines.push(baseline);
    }
  } finally {
    await globalTeardown();
  }

  const pad = (s: string | number, n: number) => String(s).padStart(n);
  say(`\n${count} registrations per mode, posted at once; done = anchor tx in the simulator's mempool\n`);
  say(
    `${'mode'.padEnd(8)}${pad('reg/s', 8)}${pad('wall ms', 9)}${pad('p50 ms', 8)}${pad('p95 ms', 8)}${pad('anchor txs', 11)}` +
      `${pad('sat/record', 11)}${pad('events/reg', 11)}${pad('events/batch', 13)}${pad('baseline/s', 11)}${pad('ratio', 7)}`,
  );
  rows.forEach((r, i) => {
    const baseline = baselines[i]!;
    say(
      `${r.mode.padEnd(8)}${pad(r.perSecond.toFixed(1), 8)}${pad(r.wallMs.toFixed(0), 9)}${pad(r.p50Ms.toFixed(0), 8)}${pad(r.p95Ms.toFixed(0), 8)}` +
        `${pad(r.anchorTxs, 11)}${pad(r.feePerRecord.toFixed(2), 11)}${pad(r.eventsPerRegistration.toFixed(1), 11)}` +
        `${pad(r.eventsPerBatch === null ? '-' : `${r.eventsPerBatch.toFixed(1)} (${r.batches})`, 13)}` +
        `${pad(baseline.perSecond.toFixed(1), 11)}${pad((r.perSecond / baseline.perSecond).toFixed(3), 7)}`,
    );
  });
  say(
    `\nbaseline: ${count} bare 1-activity workflows started at once on the same dev server, ${baselines.map((b) => `${b.perSecond.toFixed(1)}/s (${b.historyEvents} events) beside ${b.stack}`).join(', ')}`,
  );
  const [batch, single] = rows;
  say(
    `batch vs single in this run: ${(batch!.perSecond / single!.perSecond).toFixed(2)}x registrations/s, ` +
      `${(batch!.feePerRecord / single!.feePerRecord).toFixed(3)}x fee per record`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

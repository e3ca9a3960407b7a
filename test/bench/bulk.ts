/**
 * Bulk registration end to end on the real stack (Temporal dev server, FerretDB, Redis, dev KMS, chain simulator):
 * POST /v1/patch-batches with 10,000 patches, timed until the anchor transaction holding all of them is in the
 * mempool, beside a 100-patch batch in the same run (the baseline: a batch's fixed cost). Prints records/s, history
 * events, fee and KMS requests per record, and the peak RSS of the worker, which runs as its own process the way
 * production runs it (compiled: `npm run build`, then dist/workers/main.js), and of this process (API and client).
 * Run: npx tsx test/bench/bulk.ts [patches=10000]
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PublicKey } from '@bsv/sdk';
import { createApp } from '../../api/app';
import { bulkRegistrationWorkflowId } from '../../src/bulkRegistration/ids';
import globalSetup from '../support/globalSetup';
import globalTeardown from '../support/globalTeardown';
import { listen } from '../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../support/patchApi';
import { REPO_ROOT } from '../support/processes';
import { startMainWorkerProcess, startPoolStack, type PoolStack } from '../support/poolStack';
import { activitySeconds } from './historyStats';

interface Row {
  name: string;
  records: number;
  toMempoolMs: number;
  toAnchoredMs: number;
  historyEvents: number;
  kmsRequests: number;
  feeSats: number;
  peakRssMb: number;
  workerPeakRssMb: number;
  activities: Record<string, number>;
  /** Milliseconds from the batch's creation to each timing it records. */
  phases: Record<string, number>;
}

async function runBatch(stack: PoolStack, worker: ChildProcess, baseUrl: string, owner: string, name: string, size: number): Promise<Row> {
  const client = apiClient(baseUrl, stack.deps.config.auth.apiKey);
  const body = JSON.stringify(Array.from({ length: size }, (_, i) => registrationBody(`${name}-${String(i).padStart(5, '0')}`, owner)));
  const kmsBefore = stack.kms.requests.length;
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const began = performance.now();
  try {
    const answer = await client.call('POST', '/v1/patch-batches', body, {
      'content-type': 'application/json',
      'x-api-key': stack.deps.config.auth.apiKey,
      'idempotency-key': name,
    });
    if (answer.status !== 202) throw new Error(`${name}: ${answer.status} ${JSON.stringify(answer.body)}`);
    const statusUrl = String(answer.body.statusUrl);
    let toMempoolMs = 0;
    for (;;) {
      const view = (await client.adminGet(statusUrl)).body as { state: string; counts: Record<string, number>; txids: string[] };
      if (!toMempoolMs && view.counts.anchoring! + view.counts.anchored! === size) toMempoolMs = performance.now() - began;
      if (view.state === 'completed') break;
      if (view.state === 'failed') throw new Error(`${name}: ${JSON.stringify(view)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const toAnchoredMs = performance.now() - began;
    const batchId = String(answer.body.batchId);
    const history = await stack.deps.temporal.workflow.getHandle(bulkRegistrationWorkflowId(batchId)).fetchHistory();
    const view = (await client.adminGet(statusUrl)).body as { txids: string[]; timings: Record<string, string> };
    const created = Date.parse(view.timings.createdAt!);
    const phases = Object.fromEntries(Object.entries(view.timings).map(([k, at]) => [k, Date.parse(at) - created]));
    return {
      name,
      records: size,
      toMempoolMs,
      toAnchoredMs,
      historyEvents: history.events?.length ?? 0,
      kmsRequests: stack.kms.requests.length - kmsBefore,
      feeSats: transactionFee(stack, view.txids[0]!),
      peakRssMb: peakRss / 2 ** 20,
      workerPeakRssMb: peakRssOf(worker.pid!) / 2 ** 20,
      activities: activitySeconds(history.events ?? []),
      phases,
    };
  } finally {
    clearInterval(sampler);
  }
}

/** The kernel's high-water mark of a process's resident set (VmHWM), in bytes. */
function peakRssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB/m);
  return line ? Number(line[1]) * 1024 : NaN;
}

/** The anchor transaction's fee, as the chain simulator recorded it. */
function transactionFee(stack: PoolStack, txid: string): number {
  const tx = stack.simulator.simulator.state.visibleTx(txid);
  if (!tx) throw new Error(`anchor tx ${txid} unknown to the simulator`);
  return tx.fee;
}

async function main(): Promise<void> {
  const size = Number(process.argv[2] ?? 10_000);
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const stack = await startPoolStack({ ANCHOR_CONFIRMATIONS: '1', LOG_LEVEL: 'warn' }, { blockIntervalMs: 1000, inProcessWorker: false });
  const rows: Row[] = [];
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  const worker = await startMainWorkerProcess(
    stack,
    { WORKFLOW_BUNDLE_PATH: path.join(REPO_ROOT, 'dist/workflow-bundle.js') },
    'dist/workers/main.js',
  );
  const idleWorkerRssMb = peakRssOf(worker.pid!) / 2 ** 20;
  try {
    const api = await listen(createApp(stack.deps));
    const owner = PublicKey.fromString(stack.kms.keys.ensure('owner-bench').pubKeyHex).toAddress('testnet');
    await fundAndSyncPool(stack, 4, 100_000);
    rows.push(await runBatch(stack, worker, api.baseUrl, owner, 'BASE', 100));
    rows.push(await runBatch(stack, worker, api.baseUrl, owner, 'BULK', size));
    await api.close();
  } finally {
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
    await stack.close();
    await globalTeardown();
  }
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  process.stdout.write(
    `${'batch'.padEnd(14)}${pad('records', 9)}${pad('mempool ms', 12)}${pad('rec/s', 9)}${pad('anchored ms', 13)}${pad('events/rec', 12)}${pad('sat/rec', 9)}${pad('KMS req', 9)}${pad('worker RSS MB', 15)}${pad('API RSS MB', 12)}\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${`${r.name}`.padEnd(14)}${pad(r.records, 9)}${pad(r.toMempoolMs.toFixed(0), 12)}${pad((r.records / (r.toMempoolMs / 1000)).toFixed(0), 9)}` +
        `${pad(r.toAnchoredMs.toFixed(0), 13)}${pad((r.historyEvents / r.records).toFixed(4), 12)}${pad((r.feeSats / r.records).toFixed(4), 9)}` +
        `${pad(r.kmsRequests, 9)}${pad(r.workerPeakRssMb.toFixed(0), 15)}${pad(r.peakRssMb.toFixed(0), 12)}\n`,
    );
  }
  for (const r of rows) {
    const top = Object.entries(r.activities)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([type, sec]) => `${type} ${sec.toFixed(2)}s`);
    const phases = Object.entries(r.phases)
      .filter(([k]) => k !== 'createdAt')
      .map(([k, ms]) => `${k.replace(/At$/, '')} +${ms} ms`);
    process.stdout.write(`  ${r.name}: ${top.join(', ')}\n    since the batch was created: ${phases.join(', ')}\n`);
  }
  process.stdout.write(`worker peak RSS before any batch: ${idleWorkerRssMb.toFixed(0)} MB\n`);
  const [base, bulk] = rows;
  process.stdout.write(
    `\nratio in this run: ${bulk!.records}/${base!.records} records took ${(bulk!.toMempoolMs / base!.toMempoolMs).toFixed(2)}x the time to the mempool ` +
      `(${((bulk!.records / bulk!.toMempoolMs) * (base!.toMempoolMs / base!.records)).toFixed(1)}x the throughput)\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

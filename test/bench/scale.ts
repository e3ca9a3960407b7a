/**
 * Registration throughput with 1 and then 2 main worker processes (workers/main.ts, each its own Node process) on
 * the same stack shape: Temporal dev server, FerretDB, Redis, dev KMS and chain simulator, the API in this process.
 * N registrations are posted at once; a registration counts as done when its anchor transaction reaches the
 * simulator's mempool. Prints registrations per second for each worker count, their ratio, and how the
 * registrations' activities were shared between the worker processes (identities in the histories).
 * On one machine the processes share its cores with the services, so the ratio shows contention as much as scaling:
 * see docs/DEPLOY.md#scaling-out.
 * Run: npx tsx test/bench/scale.ts [N=60]
 */
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import { PrivateKey } from '@bsv/sdk';
import { temporal } from '@temporalio/proto';
import { createApp } from '../../api/app';
import { patchModel } from '../../src/registration/models';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { listen } from '../support/http';
import { fundAndSyncPool, registrationBody } from '../support/patchApi';
import { startMainWorkerProcess, startPoolStack } from '../support/poolStack';

const count = Number(process.argv[2] ?? 60);
const say = (line: string) => process.stdout.write(`${line}\n`);

interface Row {
  workers: number;
  perSecond: number;
  wallMs: number;
  /** Registrations whose activity each worker process ran, by process. */
  share: number[];
}

async function run(workerCount: number): Promise<Row> {
  const stack = await startPoolStack(
    { ANCHOR_CONFIRMATIONS: '1', ADMIN_API_MAX: '100000', PUBLIC_API_MAX: '100000', LOG_LEVEL: 'warn' },
    { blockIntervalMs: 500, inProcessWorker: false },
  );
  const workers: ChildProcess[] = [];
  const api = await listen(createApp(stack.deps));
  try {
    for (let i = 0; i < workerCount; i++) workers.push(await startMainWorkerProcess(stack));
    await fundAndSyncPool(stack, count + 5);
    const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');
    const tag = `${workerCount}w-${Date.now().toString(36)}`;
    const uids = Array.from({ length: count }, (_, i) => `SCALE-${tag}-${i}`);
    const began = Date.now();
    await Promise.all(
      uids.map(async (uid) => {
        const res = await fetch(`${api.baseUrl}/v1/patches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': stack.deps.config.auth.apiKey },
          body: JSON.stringify(registrationBody(uid, owner)),
        });
        if (res.status !== 202) throw new Error(`POST ${uid}: ${res.status} ${await res.text()}`);
      }),
    );
    const patches = patchModel(stack.deps.mongo);
    const pending = new Set(uids);
    const deadline = Date.now() + 600_000;
    while (pending.size > 0) {
      for (const uid of [...pending]) {
        const doc = await patches.findById(uid, { status: 1, lastError: 1 }).lean();
        if (doc?.status === 'failed') throw new Error(`registration ${uid} failed: ${doc.lastError}`);
        if (doc?.status === 'anchored') pending.delete(uid);
      }
      if (Date.now() > deadline) throw new Error(`${workerCount} workers: ${pending.size} not anchored after 10 minutes`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const state = stack.simulator.simulator.state;
    let lastSeen = 0;
    for (const uid of uids) {
      const txid = (await patches.findById(uid, { anchor: 1 }).lean())!.anchor!.txid;
      lastSeen = Math.max(lastSeen, state.visibleTx(txid)!.firstSeenMs);
    }
    const byPid = new Map(workers.map((w) => [String(w.pid), 0]));
    for (const uid of uids) {
      const history = await stack.deps.temporal.workflow.getHandle(`registration-${uid}`).fetchHistory();
      const started = history.events!.find((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED);
      const pid = started?.activityTaskStartedEventAttributes?.identity?.split('@')[0];
      if (pid && byPid.has(pid)) byPid.set(pid, byPid.get(pid)! + 1);
    }
    const wallMs = lastSeen - began;
    return { workers: workerCount, perSecond: (count * 1000) / wallMs, wallMs, share: [...byPid.values()] };
  } finally {
    await Promise.all(
      workers.map((child) => new Promise((r) => (child.exitCode !== null ? r(undefined) : (child.once('exit', r), child.kill('SIGTERM'))))),
    );
    await api.close();
    await stack.close();
  }
}

async function main(): Promise<void> {
  await globalSetup();
  const rows: Row[] = [];
  say(`${count} registrations posted at once per run; done = anchor tx in the simulator's mempool; ${os.cpus().length} cores\n`);
  say(`${'workers'.padEnd(9)}${'reg/s'.padStart(8)}${'wall ms'.padStart(9)}  activities per worker process`);
  try {
    for (const workers of [1, 2]) {
      const r = await run(workers);
      rows.push(r);
      // Printed as each run ends, so a failure in the second run keeps the first one's figures.
      say(`${String(r.workers).padEnd(9)}${r.perSecond.toFixed(1).padStart(8)}${r.wallMs.toFixed(0).padStart(9)}  ${r.share.join(' / ')}`);
    }
  } finally {
    await globalTeardown();
  }
  say(`\n2 workers / 1 worker: ${(rows[1]!.perSecond / rows[0]!.perSecond).toFixed(2)}x registrations/s`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

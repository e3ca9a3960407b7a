/**
 * Pool operations end to end on the real stack (Temporal dev server, FerretDB, Redis, dev KMS, chain simulator):
 * a top-up that creates 1000 outputs and a sweep that consolidates 1000 inputs, each beside a 10-output / 10-input
 * baseline run in the same process, so the ratios hold on a shared, noisy machine.
 * The pool first gets a history of spent outputs with their claims (`--history`, default 100,000), as a pool that
 * has run for a while has: spent outputs and their claims are kept for ever, so a query FerretDB cannot push down
 * grows with them.
 * Prints wall time (start → confirmed), fee, fee rate, transaction size, KMS sign requests per transaction,
 * workflow history events and seconds per activity type.
 * Run: npx tsx test/bench/pool.ts [--history 100000]
 */
import { parseArgs } from 'node:util';
import { PublicKey } from '@bsv/sdk';
import { p2pkhOutputScript } from '../../src/chain/transactions';
import { ensureIndexes } from '../../src/db/indexes';
import { registerModels } from '../../src/db/models';
import { claimModel, utxoModel } from '../../src/pool/models';
import { startSweep, startTopUp, waitForPoolOperation } from '../../src/pool/launch';
import { writePoolSetting } from '../../src/pool/settings';
import type { SweepReport, TopUpReport } from '../../workflows/pool/shared';
import globalSetup from '../support/globalSetup';
import globalTeardown from '../support/globalTeardown';
import { startPoolStack, type PoolStack } from '../support/poolStack';
import { activitySeconds } from './historyStats';

interface Row {
  name: string;
  wallMs: number;
  fee: number;
  sizeBytes: number;
  satPerKb: number;
  signRequests: number;
  historyEvents: number;
  /** Seconds per activity type, scheduled → completed, summed over its calls. */
  activitySeconds: Record<string, number>;
}

async function timed(
  stack: PoolStack,
  name: string,
  start: () => Promise<{ workflowId: string; runId: string }>,
): Promise<{ row: Row; result: TopUpReport | SweepReport }> {
  const signsBefore = stack.signRequests();
  const began = performance.now();
  const started = await start();
  const done = await waitForPoolOperation(stack.deps.temporal, started.workflowId, started.runId, { pollMs: 50, timeoutMs: 600_000 });
  const wallMs = performance.now() - began;
  if (done.state !== 'completed') throw new Error(`${name}: ${JSON.stringify(done)}`);
  const result = done.result as TopUpReport | SweepReport;
  if (!result.transaction) throw new Error(`${name}: no transaction (${result.outcome} ${result.reason ?? ''})`);
  const history = await stack.deps.temporal.workflow.getHandle(started.workflowId, started.runId).fetchHistory();
  return {
    result,
    row: {
      name,
      wallMs,
      fee: result.transaction.fee,
      sizeBytes: result.transaction.sizeBytes,
      satPerKb: (result.transaction.fee * 1000) / result.transaction.sizeBytes,
      signRequests: stack.signRequests() - signsBefore,
      historyEvents: history.events?.length ?? 0,
      activitySeconds: activitySeconds(history.events ?? []),
    },
  };
}

async function fundMany(stack: PoolStack, address: string, count: number, satoshis: number): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => stack.fund(address, satoshis + ((i + j) % 7))));
  }
}

const { values: flags } = parseArgs({ options: { history: { type: 'string', default: '100000' } } });

/** Spent outputs with their claims, spread over the given addresses, inserted 1,000 at a time. */
async function seedHistory(stack: PoolStack, count: number, owners: { keyIdentifier: string; address: string }[]): Promise<void> {
  const utxos = utxoModel(stack.deps.mongo);
  const claims = claimModel(stack.deps.mongo);
  const scripts = owners.map((o) => ({ ...o, lockingScriptHex: p2pkhOutputScript(o.address, 'test').toHex() }));
  const started = performance.now();
  for (let start = 0; start < count; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - start) }, (_, i) => {
      const n = start + i;
      const txid = `ab${n.toString(16).padStart(62, '0')}`;
      const owner = scripts[n % scripts.length]!;
      return { _id: `${txid}:0`, txid, vout: 0, owner };
    });
    await utxos.insertMany(
      batch.map((b) => ({
        _id: b._id,
        txid: b.txid,
        vout: 0,
        satoshis: 1000,
        lockingScriptHex: b.owner.lockingScriptHex,
        keyIdentifier: b.owner.keyIdentifier,
        status: 'spent' as const,
        blockHeight: 1,
        reservedBy: 'utxo-topup-history@run',
        spentBy: 'e'.repeat(64),
        unseenSyncs: 0,
      })),
    );
    await claims.insertMany(batch.map((b) => ({ _id: b._id, owner: 'utxo-topup-history@run', slot: 'history', claimedAt: new Date() })));
  }
  process.stderr.write(`[bench] seeded ${count} spent outputs and claims in ${Math.round((performance.now() - started) / 1000)} s\n`);
}

async function main(): Promise<void> {
  process.env.JEST_WORKER_ID ??= '1';
  const history = Number(flags.history);
  await globalSetup();
  const stack = await startPoolStack(
    {
      UTXO_SPLIT_SIZE_SATS: '1000',
      MAX_SPLIT_OUTPUTS: '1000',
      DUST_THRESHOLD_SATS: '600',
      SWEEP_MAX_INPUTS: '1000',
      FEE_PER_KB: '100',
      LOG_LEVEL: 'warn',
    },
    { blockIntervalMs: 200 },
  );
  const rows: Row[] = [];
  try {
    // As the worker does at start: the queries below run against the declared indexes.
    registerModels(stack.deps.mongo);
    await ensureIndexes(stack.deps.mongo);
    const funding = stack.accounts.funding;
    const changeAddress = (keyIdentifier: string) =>
      PublicKey.fromString(stack.kms.keys.ensure(keyIdentifier).pubKeyHex).toAddress('testnet');
    await seedHistory(stack, history, [
      { keyIdentifier: funding.keyIdentifier, address: funding.address },
      { keyIdentifier: 'bench-change-large', address: changeAddress('bench-change-large') },
    ]);
    await stack.fund(funding.address, 5_000_000);
    const topUp = async (name: string, target: number) => {
      await writePoolSetting(stack.deps.mongo, 'UTXO_MIN_POOL', target, 'bench');
      rows.push((await timed(stack, name, () => startTopUp(stack.deps.temporal, funding.keyIdentifier, { requestedBy: 'test' }))).row);
    };
    // The funding output itself counts as one spendable output.
    await topUp('top-up, 10 outputs (baseline)', 11);
    await topUp('top-up, 1000 outputs', 1011);

    const sweep = async (name: string, keyIdentifier: string, inputs: number) => {
      const address = changeAddress(keyIdentifier);
      await fundMany(stack, address, inputs, 700);
      rows.push(
        (
          await timed(stack, name, () =>
            startSweep(stack.deps.temporal, {
              requestedBy: 'test',
              changeAddress: address,
              changeKeyId: keyIdentifier,
              destinationAddress: funding.address,
            }),
          )
        ).row,
      );
    };
    await sweep('sweep, 10 inputs (baseline)', 'bench-change-small', 10);
    await sweep('sweep, 1000 inputs', 'bench-change-large', 1000);
  } finally {
    await stack.close();
    await globalTeardown();
  }

  const pad = (s: string | number, n: number) => String(s).padStart(n);
  process.stdout.write(`pool history: ${history} spent outputs with their claims\n`);
  process.stdout.write(
    `${'operation'.padEnd(32)}${pad('wall ms', 10)}${pad('fee sat', 10)}${pad('sat/kB', 9)}${pad('bytes', 10)}${pad('KMS req', 9)}${pad('events', 8)}\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${r.name.padEnd(32)}${pad(r.wallMs.toFixed(0), 10)}${pad(r.fee, 10)}${pad(r.satPerKb.toFixed(1), 9)}${pad(r.sizeBytes, 10)}${pad(r.signRequests, 9)}${pad(r.historyEvents, 8)}\n`,
    );
  }
  for (const r of rows) {
    const top = Object.entries(r.activitySeconds)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([type, sec]) => `${type} ${sec.toFixed(2)}s`);
    process.stdout.write(`  ${r.name}: ${top.join(', ')}\n`);
  }
  const [splitBase, split, sweepBase, sweepLarge] = rows;
  process.stdout.write(
    `\nratios in this run: top-up 1000/10 outputs wall ${(split!.wallMs / splitBase!.wallMs).toFixed(2)}x, size ${(split!.sizeBytes / splitBase!.sizeBytes).toFixed(1)}x; ` +
      `sweep 1000/10 inputs wall ${(sweepLarge!.wallMs / sweepBase!.wallMs).toFixed(2)}x, size ${(sweepLarge!.sizeBytes / sweepBase!.sizeBytes).toFixed(1)}x\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

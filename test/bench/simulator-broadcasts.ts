/**
 * Broadcast throughput of the chain simulator: `npx tsx test/bench/simulator-broadcasts.ts [N]` (default 500).
 * Sends N independent valid P2PKH spends over HTTP, each fully validated (scripts included), then N txs that
 * fail at the first check (decode), and prints both rates and their ratio from the same run, plus the same two
 * measured in-process without HTTP. Transactions are signed before the clock starts.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Transaction } from '@bsv/sdk';
import { NODE_REASONS, WOC_REJECTION_PREFIX } from '../../ops/stand-ins/chain-simulator/nodeReasons';
import { createChainSimulator } from '../../ops/stand-ins/chain-simulator/server';
import { validateTransaction } from '../../ops/stand-ins/chain-simulator/validation';
import { newKey, payTo, spend } from '../support/chainTransactions';

const count = Number(process.argv[2] ?? 500);
const OUTPUT_SATOSHIS = 5_000;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  if (!Number.isInteger(count) || count < 1) throw new Error('N must be a whole number ≥ 1');
  const simulator = createChainSimulator({ network: 'test', feeRateSatPerKb: 1 });
  const server = simulator.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/bsv/test/tx/raw`;
  const post = async (txhex: string) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ txhex }) });
    return { status: res.status, body: (await res.json()) as string };
  };

  try {
    // One confirmed split tx gives N independent outputs, so no broadcast depends on another.
    const key = newKey();
    const funding = simulator.state.fund(
      payTo(key, count * OUTPUT_SATOSHIS + 10_000).lockingScript,
      count * OUTPUT_SATOSHIS + 10_000,
      true,
    );
    const split = await spend(
      [{ txid: funding.txid, vout: 0, satoshis: count * OUTPUT_SATOSHIS + 10_000, key }],
      Array.from({ length: count }, () => payTo(key, OUTPUT_SATOSHIS)),
    );
    if ((await post(split.toHex())).status !== 200) throw new Error('split tx rejected');
    simulator.mine(1);

    say(`signing ${count} txs…`);
    const txs: Transaction[] = [];
    for (let vout = 0; vout < count; vout++) {
      txs.push(await spend([{ txid: split.id('hex'), vout, satoshis: OUTPUT_SATOSHIS, key }], [payTo(newKey(), OUTPUT_SATOSHIS - 200)]));
    }
    const validHex = txs.map((tx) => tx.toHex());
    const truncatedHex = validHex.map((hex) => hex.slice(0, -2));

    const timed = async (label: string, run: () => Promise<void> | void): Promise<number> => {
      const started = process.hrtime.bigint();
      await run();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const rate = count / seconds;
      say(`${label.padEnd(46)} ${rate.toFixed(0).padStart(7)} tx/s  (${((seconds * 1000) / count).toFixed(3)} ms each)`);
      return rate;
    };

    // In-process first, while the txs are still unknown to the chain.
    const view = simulator.state.validationView();
    const inProcessValid = await timed('in-process, valid (full validation)', () => {
      for (const hex of validHex) if (!validateTransaction(hex, view, simulator.policy).ok) throw new Error('valid tx rejected');
    });
    const inProcessRejected = await timed('in-process, rejected at first check (decode)', () => {
      for (const hex of truncatedHex) if (validateTransaction(hex, view, simulator.policy).ok) throw new Error('truncated tx accepted');
    });

    const httpValid = await timed('HTTP, valid broadcasts (accepted)', async () => {
      for (const hex of validHex) if ((await post(hex)).status !== 200) throw new Error('valid broadcast rejected');
    });
    const expected = `${WOC_REJECTION_PREFIX}${NODE_REASONS.decodeFailed}`;
    const httpRejected = await timed('HTTP, rejected at first check (decode)', async () => {
      for (const hex of truncatedHex)
        if ((await post(hex)).body !== expected) throw new Error('truncated broadcast not rejected as expected');
    });

    if (simulator.state.mempoolTxids.length !== count)
      throw new Error(`mempool holds ${simulator.state.mempoolTxids.length}, expected ${count}`);
    say(
      `ratio valid/rejected: HTTP ${(httpValid / httpRejected).toFixed(3)}, in-process ${(inProcessValid / inProcessRejected).toFixed(4)}`,
    );
  } finally {
    server.closeAllConnections();
    server.close();
    await simulator.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

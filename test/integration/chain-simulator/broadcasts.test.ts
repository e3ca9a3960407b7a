import { MerklePath } from '@bsv/sdk';
import { createWocClient, type WocClient } from '../../../src/woc/client';
import { tscProofRoot } from '../../../src/woc/tscProof';
import { type RunningSimulator, startSimulator } from '../../support/chainSimulator';
import { dataOutput, newKey, payTo, spend, withHighS, withOutputs } from '../../support/chainTransactions';

/**
 * The WOC client against the chain simulator over a real socket: what a broadcast comes to and what the chain
 * shows afterwards. The policy fee rate is 50 sat/kB, so a 1-in-1-out P2PKH tx (~191 bytes) needs 10 sat.
 */
let sim: RunningSimulator;
let woc: WocClient;

beforeAll(async () => {
  sim = await startSimulator({ feeRateSatPerKb: 50 });
  woc = createWocClient({ network: 'test', baseUrl: sim.baseUrl, timeoutMs: 5_000, retries: 2, requestsPerSecond: 1_000 });
});
afterAll(() => sim.stop());

describe('chain simulator over HTTP with the WOC client', () => {
  it('accepts a P2PKH spend of a faucet output, lists it at height 0, then confirms it with a merkle proof of its block', async () => {
    const owner = newKey();
    const receiver = newKey();
    const coin = await sim.faucet(owner, 100_000);
    expect(await woc.listUnspent(owner.toAddress('testnet'))).toEqual([
      { txid: coin.txid, vout: 0, satoshis: 100_000, height: expect.any(Number) },
    ]);

    const tx = await spend([coin], [payTo(receiver, 60_000), payTo(owner, 39_000)]);
    const txid = tx.id('hex');
    expect(await woc.broadcast(tx.toHex())).toEqual({ outcome: 'success', txid, alreadyKnown: false, httpStatus: 200 });
    expect(await woc.listUnspent(receiver.toAddress('testnet'))).toEqual([{ txid, vout: 0, satoshis: 60_000, height: 0 }]);
    expect(await woc.listUnspent(owner.toAddress('testnet'))).toEqual([{ txid, vout: 1, satoshis: 39_000, height: 0 }]);
    expect(await woc.getTx(txid)).toMatchObject({ txid, confirmations: 0, outputs: [{ satoshis: 60_000 }, { satoshis: 39_000 }] });
    expect(await woc.getMerkleProof(txid)).toBeNull();
    expect(await woc.getRawTx(txid)).toBe(tx.toHex());

    const mined = await sim.mine(1);
    const block = mined.blocks[0]!;
    expect(block.txids).toContain(txid);
    expect(await woc.getTx(txid)).toMatchObject({ confirmations: 1, blockHash: block.hash, blockHeight: block.height });
    expect(await woc.listUnspent(receiver.toAddress('testnet'))).toEqual([{ txid, vout: 0, satoshis: 60_000, height: block.height }]);

    const proof = (await woc.getMerkleProof(txid))!;
    expect(proof).toMatchObject({ txOrId: txid, target: block.hash, index: block.txids.indexOf(txid) });
    const header = (await woc.getBlockHeader(proof.target))!;
    expect(tscProofRoot(txid, proof)).toBe(header.merkleRoot);
    // Independently: the SDK's own merkle path over the block's txids reaches the same root.
    const leaves = block.txids.map((hash, offset) => ({ offset, hash, txid: true }));
    const level = leaves.length % 2 === 1 && leaves.length > 1 ? [...leaves, { offset: leaves.length, duplicate: true }] : leaves;
    expect(new MerklePath(block.height, [level]).computeRoot(txid)).toBe(header.merkleRoot);

    await sim.mine(2);
    expect(await woc.getTx(txid)).toMatchObject({ confirmations: 3 });
    expect((await woc.getChainInfo()).blocks).toBe(block.height + 2);
  });

  it('counts the same tx sent twice as success: already in the mempool, then already known once mined', async () => {
    const coin = await sim.faucet(newKey(), 50_000);
    const tx = await spend([coin], [payTo(newKey(), 49_000)]);
    expect(await woc.broadcast(tx.toHex())).toMatchObject({ outcome: 'success', alreadyKnown: false });
    expect(await woc.broadcast(tx.toHex())).toEqual({
      outcome: 'success',
      txid: tx.id('hex'),
      alreadyKnown: true,
      reason: 'Transaction already in the mempool',
      httpStatus: 400,
    });
    await sim.mine(1);
    expect(await woc.broadcast(tx.toHex())).toMatchObject({ outcome: 'success', alreadyKnown: true, reason: '257: txn-already-known' });
  });

  it('rejects tampered txs with the node reasons and keeps them off the chain', async () => {
    const owner = newKey();
    const coin = await sim.faucet(owner, 50_000);
    const receiver = newKey();
    const signed = await spend([coin], [payTo(receiver, 49_000)]);
    const cases = [
      [
        withOutputs(signed, [payTo(receiver, 48_000)]),
        '16: mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)',
      ],
      [
        await spend([coin], [payTo(receiver, 49_000)], { signWith: [newKey()] }),
        '16: mandatory-script-verify-flag-failed (Script failed an OP_EQUALVERIFY operation)',
      ],
      [withHighS(signed), '64: non-mandatory-script-verify-flag (Non-canonical signature: S value is unnecessarily high)'],
    ] as const;
    for (const [tx, reason] of cases) {
      expect(await woc.broadcast(tx.toHex())).toEqual({
        outcome: 'script_verify_failed',
        txid: tx.id('hex'),
        alreadyKnown: false,
        reason,
        httpStatus: 400,
      });
      expect(await woc.getTx(tx.id('hex'))).toBeNull();
    }
    expect(await woc.getOutputSpend(coin.txid, 0)).toEqual({ spent: false });
    expect(await woc.broadcast(signed.toHex())).toMatchObject({ outcome: 'success' });
  });

  it('rejects a double spend with txn-mempool-conflict and reports who spent the output', async () => {
    const coin = await sim.faucet(newKey(), 50_000);
    const first = await spend([coin], [payTo(newKey(), 49_000)]);
    const second = await spend([coin], [payTo(newKey(), 48_000)]);
    expect((await woc.broadcast(first.toHex())).outcome).toBe('success');
    expect(await woc.broadcast(second.toHex())).toMatchObject({ outcome: 'mempool_conflict', reason: '258: txn-mempool-conflict' });
    expect(await woc.getOutputSpend(coin.txid, 0)).toEqual({ spent: true, txid: first.id('hex'), vin: 0, confirmed: false });
    await sim.mine(1);
    expect(await woc.broadcast(second.toHex())).toMatchObject({ outcome: 'missing_inputs', reason: 'Missing inputs' });
    expect(await woc.getOutputSpend(coin.txid, 0)).toMatchObject({ spent: true, confirmed: true });
  });

  it('rejects a spend of an output that does not exist with Missing inputs', async () => {
    const coin = await sim.faucet(newKey(), 50_000);
    const tx = await spend([{ ...coin, vout: 3 }], [payTo(newKey(), 49_000)]);
    expect(await woc.broadcast(tx.toHex())).toMatchObject({ outcome: 'missing_inputs', reason: 'Missing inputs' });
  });

  it('rejects dust and a fee below the policy rate, and accepts a zero-value data output', async () => {
    const coin = await sim.faucet(newKey(), 50_000);
    const dust = await spend([coin], [payTo(newKey(), 49_000), payTo(newKey(), 0)]);
    expect(await woc.broadcast(dust.toHex())).toMatchObject({ outcome: 'dust', reason: '64: dust' });
    const cheap = await spend([coin], [payTo(newKey(), 49_995)]);
    expect(await woc.broadcast(cheap.toHex())).toMatchObject({ outcome: 'insufficient_fee', reason: '66: mempool min fee not met' });
    const anchor = await spend([coin], [dataOutput([0x50, 0x50]), payTo(newKey(), 49_900)]);
    expect(await woc.broadcast(anchor.toHex())).toMatchObject({ outcome: 'success' });
  });

  it('reports bulk statuses for confirmed, mempool and unknown txs', async () => {
    const [a, b] = [await sim.faucet(newKey(), 20_000), await sim.faucet(newKey(), 20_000)];
    const confirmed = await spend([a], [payTo(newKey(), 19_000)]);
    await woc.broadcast(confirmed.toHex());
    await sim.mine(1);
    const pending = await spend([b], [payTo(newKey(), 19_000)]);
    await woc.broadcast(pending.toHex());
    const unknown = 'ab'.repeat(32);
    expect(await woc.getTxStatuses([confirmed.id('hex'), pending.id('hex'), unknown])).toEqual([
      { txid: confirmed.id('hex'), state: 'confirmed', confirmations: 1, blockHash: expect.any(String), blockHeight: expect.any(Number) },
      { txid: pending.id('hex'), state: 'mempool', confirmations: 0 },
      { txid: unknown, state: 'unknown', confirmations: 0 },
    ]);
  });
});

describe('chain simulator HTTP contract', () => {
  const get = (path: string) => fetch(`${sim.baseUrl}/v1/bsv/test${path}`);

  it('answers a rejection as WOC does: HTTP 400 with a JSON string carrying the node reason', async () => {
    const res = await fetch(`${sim.baseUrl}/v1/bsv/test/tx/raw`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ txhex: 'beef' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toBe('unexpected response code 500: TX decode failed');
  });

  it('serves tx JSON with values in BSV and leaves block fields out while unconfirmed', async () => {
    const coin = await sim.faucet(newKey(), 30_000);
    const tx = await spend([coin], [payTo(newKey(), 29_000)]);
    await woc.broadcast(tx.toHex());
    const body = (await (await get(`/tx/hash/${tx.id('hex')}`)).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ txid: tx.id('hex'), vout: [{ value: 0.00029, n: 0, scriptPubKey: { type: 'pubkeyhash' } }] });
    expect(body).not.toHaveProperty('blockhash');
    expect(body).not.toHaveProperty('confirmations');
  });

  it('answers 404 for unknown txs and unspent outputs, and 400 for an address of the other network', async () => {
    const unknown = 'cd'.repeat(32);
    expect((await get(`/tx/hash/${unknown}`)).status).toBe(404);
    expect((await get(`/tx/${unknown}/hex`)).status).toBe(404);
    expect((await get(`/tx/${unknown}/proof/tsc`)).status).toBe(404);
    const coin = await sim.faucet(newKey(), 10_000);
    expect((await get(`/tx/${coin.txid}/out/0/spend`)).status).toBe(404);
    expect((await get(`/address/${newKey().toAddress('mainnet')}/unspent`)).status).toBe(400);
    expect((await fetch(`${sim.baseUrl}/v1/bsv/stn/chain/info`)).status).toBe(404);
  });

  it('keeps the two networks apart: a testnet tx is unknown on mainnet', async () => {
    const coin = await sim.faucet(newKey(), 10_000);
    expect((await fetch(`${sim.baseUrl}/v1/bsv/main/tx/hash/${coin.txid}`)).status).toBe(404);
    expect((await get(`/tx/hash/${coin.txid}`)).status).toBe(200);
  });
});

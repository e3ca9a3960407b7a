import { blockHashOf, meetsProofOfWork, serializeBlockHeader } from '../../../src/chain/blockHeader';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MerklePath, P2PKH, type Transaction } from '@bsv/sdk';
import { merkleRoot } from '../../../ops/stand-ins/chain-simulator/merkle';
import { NODE_REASONS } from '../../../ops/stand-ins/chain-simulator/nodeReasons';
import { createChainSimulator } from '../../../ops/stand-ins/chain-simulator/server';
import { type ChainSnapshot, ChainState } from '../../../ops/stand-ins/chain-simulator/state';
import { DEFAULT_POLICY, validateTransaction } from '../../../ops/stand-ins/chain-simulator/validation';
import { type Coin, newKey, payTo, spend } from '../../support/chainTransactions';

function setup(chain = new ChainState('test')) {
  const fund = (satoshis: number, confirmed = true): Coin => {
    const key = newKey();
    const record = chain.fund(new P2PKH().lock(key.toPublicKey().toHash()), satoshis, confirmed);
    return { txid: record.txid, vout: 0, satoshis, key };
  };
  const broadcast = (tx: Transaction) => {
    const result = validateTransaction(tx.toHex(), chain.validationView(), DEFAULT_POLICY);
    if (!result.ok) throw new Error(result.reason);
    chain.acceptToMempool(result.tx, result.fee);
    return result.txid;
  };
  const scriptOf = (coin: Coin) => new P2PKH().lock(coin.key.toPublicKey().toHash()).toHex();
  return { chain, fund, broadcast, scriptOf };
}

describe('chain state: mining', () => {
  it('starts at a genesis block holding only its coinbase', () => {
    const chain = new ChainState('main');
    expect(chain.height).toBe(0);
    expect(chain.tip.txids).toHaveLength(1);
    expect(chain.tip.merkleRoot).toBe(merkleRoot(chain.tip.txids));
  });

  it('mines the mempool into a block after its coinbase, with a merkle root the SDK agrees with', async () => {
    const { chain, fund, broadcast } = setup();
    const txids = [];
    for (let i = 0; i < 4; i++) txids.push(broadcast(await spend([fund(10_000)], [payTo(newKey(), 9_000)])));
    const [block] = chain.mine(1);
    expect(block!.txids.slice(1)).toEqual(txids);
    expect(chain.mempoolTxids).toEqual([]);
    const leaves = block!.txids.map((hash, offset) => ({ offset, hash, txid: true }));
    expect(new MerklePath(block!.height, [[...leaves, { offset: 5, duplicate: true }]]).computeRoot(txids[0])).toBe(block!.merkleRoot);
    expect(block!.prevHash).toBe(chain.blocks[block!.height - 1]!.hash);
    // Every header carries valid proof of work for its bits, so a verifier can check it as on a real chain.
    for (const mined of chain.blocks) {
      const header = serializeBlockHeader(mined);
      expect(meetsProofOfWork(header)).toBe(true);
      expect(blockHashOf(header)).toBe(mined.hash);
    }
  });

  it('counts confirmations as tip - height + 1', async () => {
    const { chain, fund, broadcast } = setup();
    const txid = broadcast(await spend([fund(10_000)], [payTo(newKey(), 9_000)]));
    expect(chain.confirmations(chain.visibleTx(txid)!)).toBe(0);
    chain.mine(1);
    expect(chain.confirmations(chain.visibleTx(txid)!)).toBe(1);
    chain.mine(2);
    expect(chain.confirmations(chain.visibleTx(txid)!)).toBe(3);
  });

  it('gives a mined tx a TSC proof whose target is its block', async () => {
    const { chain, fund, broadcast } = setup();
    const txid = broadcast(await spend([fund(10_000)], [payTo(newKey(), 9_000)]));
    expect(chain.tscProof(txid)).toBeUndefined();
    const [block] = chain.mine(1);
    expect(chain.tscProof(txid)).toMatchObject({ index: 1, txOrId: txid, target: block!.hash });
  });
});

describe('chain simulator: block timer', () => {
  it('mines on both networks at the configured interval and stops on close', async () => {
    const simulator = createChainSimulator({ blockIntervalMs: 20 });
    // Waits for blocks rather than for a fixed time: a loaded machine may fire the timer late, never early.
    const deadline = Date.now() + 10_000;
    while (simulator.chains.main.height < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await simulator.close();
    const heights = [simulator.chains.main.height, simulator.chains.test.height];
    expect(heights[0]).toBeGreaterThanOrEqual(2);
    expect(heights[1]).toBe(heights[0]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect([simulator.chains.main.height, simulator.chains.test.height]).toEqual(heights);
  });
});

describe('chain state: faucet', () => {
  it('mines a confirmed funding tx in a block of its own, leaving other mempool txs unconfirmed', async () => {
    const { chain, fund, broadcast } = setup();
    const pending = broadcast(await spend([fund(10_000)], [payTo(newKey(), 9_000)]));
    const coin = fund(5_000);
    expect(chain.tip.txids).toEqual([chain.tip.txids[0], coin.txid]);
    expect(chain.mempoolTxids).toEqual([pending]);
  });

  it('leaves an unconfirmed funding tx in the mempool, spendable at once', async () => {
    const { chain, fund, broadcast } = setup();
    const coin = fund(5_000, false);
    expect(chain.mempoolTxids).toEqual([coin.txid]);
    const txid = broadcast(await spend([coin], [payTo(newKey(), 4_000)]));
    expect(chain.mempoolTxids).toEqual([coin.txid, txid]);
  });
});

describe('chain state: unspent outputs by script', () => {
  it('lists mempool outputs at height 0, flags outputs a mempool tx spends, and drops outputs spent in a block', async () => {
    const { chain, fund, broadcast, scriptOf } = setup();
    const coin = fund(10_000);
    const height = chain.height;
    expect(chain.unspentForScript(scriptOf(coin))).toEqual([{ txid: coin.txid, vout: 0, satoshis: 10_000, height }]);
    const tx = await spend([coin], [payTo(newKey(), 5_000), payTo(coin.key, 4_000)]);
    broadcast(tx);
    expect(chain.unspentForScript(scriptOf(coin))).toEqual([
      { txid: coin.txid, vout: 0, satoshis: 10_000, height, spentInMempoolBy: tx.id('hex') },
      { txid: tx.id('hex'), vout: 1, satoshis: 4_000, height: 0 },
    ]);
    chain.mine(1);
    expect(chain.unspentForScript(scriptOf(coin))).toEqual([{ txid: tx.id('hex'), vout: 1, satoshis: 4_000, height: height + 1 }]);
  });
});

describe('chain state: reorgs', () => {
  it('returns the txs of disconnected blocks to the mempool ahead of newer ones and drops confirmations to 0', async () => {
    const { chain, fund, broadcast } = setup();
    const [a, b] = [fund(10_000), fund(10_000)];
    const first = broadcast(await spend([a], [payTo(newKey(), 9_000)]));
    const [block] = chain.mine(1);
    const later = broadcast(await spend([b], [payTo(newKey(), 9_000)]));
    const outcome = chain.reorg(1);
    expect(outcome).toEqual({ disconnected: [block!.hash], returnedToMempool: [first], dropped: [] });
    expect(chain.mempoolTxids).toEqual([first, later]);
    expect(chain.confirmations(chain.visibleTx(first)!)).toBe(0);
    expect(chain.visibleTx(block!.txids[0]!)).toBeUndefined();
    const [replacement] = chain.mine(1);
    expect(replacement!.height).toBe(block!.height);
    expect(replacement!.hash).not.toBe(block!.hash);
    expect(replacement!.txids.slice(1)).toEqual([first, later]);
  });

  it('evicts a dropped tx and every descendant whose inputs vanished with it', async () => {
    const { chain, fund, broadcast } = setup();
    const coin = fund(10_000);
    const next = newKey();
    const parent = await spend([coin], [payTo(next, 9_000)]);
    broadcast(parent);
    chain.mine(1);
    const child = broadcast(await spend([{ txid: parent.id('hex'), vout: 0, satoshis: 9_000, key: next }], [payTo(newKey(), 8_000)]));
    const outcome = chain.reorg(1, [parent.id('hex')]);
    expect(outcome.dropped).toEqual([parent.id('hex'), child]);
    expect(chain.mempoolTxids).toEqual([]);
    expect(chain.visibleTx(child)).toBeUndefined();
    // The funding output is spendable again, as in a real reorg that lost the spend.
    expect(validateTransaction((await spend([coin], [payTo(newKey(), 9_500)])).toHex(), chain.validationView(), DEFAULT_POLICY).ok).toBe(
      true,
    );
  });

  it('refuses to disconnect the genesis block', () => {
    const chain = new ChainState('test');
    chain.mine(2);
    expect(() => chain.reorg(3)).toThrow(RangeError);
    expect(() => chain.reorg(0)).toThrow(RangeError);
  });
});

describe('chain state: snapshots', () => {
  it('restores blocks, mempool, spends and unspent outputs from a snapshot', async () => {
    const { chain, fund, broadcast, scriptOf } = setup();
    const coin = fund(10_000);
    const tx = await spend([coin], [payTo(coin.key, 9_000)]);
    broadcast(tx);
    const restored = ChainState.fromSnapshot(JSON.parse(JSON.stringify(chain.toSnapshot())) as ChainSnapshot);
    expect(restored.tip.hash).toBe(chain.tip.hash);
    expect(restored.mempoolTxids).toEqual([tx.id('hex')]);
    expect(restored.unspentForScript(scriptOf(coin))).toEqual(chain.unspentForScript(scriptOf(coin)));
    const again = validateTransaction(tx.toHex(), restored.validationView(), DEFAULT_POLICY);
    expect(again).toMatchObject({ ok: false, reason: NODE_REASONS.alreadyInMempool });
    const [block] = restored.mine(1);
    expect(block!.hash).not.toBe(chain.tip.hash);
  });

  it('persists both networks to a file and loads them on the next start', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chain-sim-'));
    try {
      const persistFile = path.join(dir, 'chain.json');
      const first = createChainSimulator({ persistFile });
      const { fund } = setup(first.chains.test);
      const coin = fund(10_000);
      first.mine(3, 'main');
      await first.close();
      const second = createChainSimulator({ persistFile });
      expect(second.chains.main.height).toBe(3);
      expect(second.chains.test.visibleTx(coin.txid)?.blockHeight).toBe(1);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

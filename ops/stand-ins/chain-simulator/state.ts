import { randomBytes } from 'node:crypto';
import { LockingScript, OP, Transaction, UnlockingScript } from '@bsv/sdk';
import { type Network, scriptHashOf } from './addresses';
import { blockHash, meetsProofOfWork, serializeBlockHeader } from '../../../src/chain/blockHeader';
import { merkleRoot, tscProofNodes } from './merkle';
import { type SpendableOutput, type ValidationView, isDataScript } from './validation';

/**
 * One network's chain: every tx it knows (mined or in the mempool), the blocks, which tx spends each outpoint and
 * an index of outputs by locking script. Outputs of mempool txs are spendable at once (unconfirmed), as on BSV.
 */

export interface OutputRecord extends SpendableOutput {
  scriptHex: string;
}

export interface TxRecord {
  txid: string;
  rawHex: string;
  size: number;
  fee: number;
  /** `faucet` and `coinbase` txs have no real inputs; the simulator creates them by fiat. */
  kind: 'tx' | 'faucet' | 'coinbase';
  inputs: { txid: string; vout: number }[];
  outputs: OutputRecord[];
  firstSeenMs: number;
  /** Before this instant the tx is invisible to queries and to spenders (the propagation-lag fault). */
  visibleAtMs: number;
  blockHeight?: number;
}

export interface Block {
  height: number;
  hash: string;
  prevHash: string;
  merkleRoot: string;
  version: number;
  /** Seconds since the epoch. */
  time: number;
  bits: number;
  nonce: number;
  txids: string[];
}

export interface UnspentOutput {
  txid: string;
  vout: number;
  satoshis: number;
  /** 0 while unconfirmed, as WhatsOnChain reports it. */
  height: number;
  /** Set when a mempool tx already spends it (WOC's isSpentInMempoolTx). */
  spentInMempoolBy?: string;
}

export interface ReorgOutcome {
  disconnected: string[];
  returnedToMempool: string[];
  dropped: string[];
}

export interface ChainSnapshot {
  network: Network;
  nextNonce: number;
  blocks: Block[];
  txs: { rawHex: string; kind: TxRecord['kind']; fee: number; firstSeenMs: number }[];
  mempool: string[];
}

const NULL_TXID = '0'.repeat(64);
const BLOCK_VERSION = 0x20000000;
// Regtest difficulty: about two hashes find a nonce, and every header still carries valid proof of work.
const BLOCK_BITS = 0x207fffff;

const outpointKey = (txid: string, vout: number) => `${txid}:${vout}`;

export class ChainState {
  readonly blocks: Block[] = [];
  private readonly txs = new Map<string, TxRecord>();
  /** Insertion order is a topological order: a tx enters only after its parents. */
  private readonly mempool = new Set<string>();
  private readonly spends = new Map<string, { txid: string; vin: number }>();
  private readonly outputsByScript = new Map<string, Set<string>>();
  private readonly scriptByHash = new Map<string, string>();
  private nextNonce = 0;

  constructor(
    readonly network: Network,
    private readonly now: () => number = Date.now,
    /** Called after every change, e.g. to persist. */
    private readonly onChange: () => void = () => {},
    genesis = true,
  ) {
    if (genesis) this.mineBlock(new Set());
  }

  get tip(): Block {
    return this.blocks[this.blocks.length - 1]!;
  }

  get height(): number {
    return this.tip.height;
  }

  get mempoolTxids(): string[] {
    return [...this.mempool];
  }

  get mempoolBytes(): number {
    let bytes = 0;
    for (const txid of this.mempool) bytes += this.txs.get(txid)!.size;
    return bytes;
  }

  /** The tx as the API shows it, or undefined while unknown or still propagating. */
  visibleTx(txid: string): TxRecord | undefined {
    const record = this.txs.get(txid);
    return record && this.isVisible(record) ? record : undefined;
  }

  confirmations(record: TxRecord): number {
    return record.blockHeight === undefined ? 0 : this.height - record.blockHeight + 1;
  }

  blockOf(record: TxRecord): Block | undefined {
    return record.blockHeight === undefined ? undefined : this.blocks[record.blockHeight];
  }

  blockByHashOrHeight(id: string): Block | undefined {
    if (/^\d+$/.test(id)) return this.blocks[Number(id)];
    return this.blocks.find((b) => b.hash === id.toLowerCase());
  }

  /** The visible tx spending an outpoint, if any. */
  spenderOf(txid: string, vout: number): { txid: string; vin: number; confirmed: boolean } | undefined {
    const spend = this.spends.get(outpointKey(txid, vout));
    const spender = spend && this.visibleTx(spend.txid);
    return spend && spender ? { ...spend, confirmed: spender.blockHeight !== undefined } : undefined;
  }

  scriptForHash(scriptHash: string): string | undefined {
    return this.scriptByHash.get(scriptHash.toLowerCase());
  }

  /** Outputs paying a locking script that no mined tx has spent, oldest first, mempool last. */
  unspentForScript(scriptHex: string): UnspentOutput[] {
    const result: UnspentOutput[] = [];
    for (const key of this.outputsByScript.get(scriptHex) ?? []) {
      const [txid, voutText] = key.split(':') as [string, string];
      const vout = Number(voutText);
      const record = this.visibleTx(txid);
      if (!record) continue;
      const spend = this.spends.get(key);
      if (spend && !this.mempool.has(spend.txid)) continue;
      result.push({
        txid,
        vout,
        satoshis: record.outputs[vout]!.satoshis,
        height: record.blockHeight ?? 0,
        ...(spend && { spentInMempoolBy: spend.txid }),
      });
    }
    const order = (u: UnspentOutput) => (u.height === 0 ? Number.MAX_SAFE_INTEGER : u.height);
    return result.sort((a, b) => order(a) - order(b) || a.txid.localeCompare(b.txid) || a.vout - b.vout);
  }

  /** TSC proof of a mined tx (index, txOrId, target block hash, nodes). */
  tscProof(txid: string): { index: number; txOrId: string; target: string; nodes: string[] } | undefined {
    const record = this.visibleTx(txid);
    const block = record && this.blockOf(record);
    if (!block) return undefined;
    const index = block.txids.indexOf(txid);
    return { index, txOrId: txid, target: block.hash, nodes: tscProofNodes(block.txids, index) };
  }

  validationView(): ValidationView {
    const now = this.now();
    return {
      knownState: (txid) => {
        const record = this.txs.get(txid);
        if (!record) return 'unknown';
        if (this.mempool.has(txid)) return 'in-mempool';
        const unspent = record.outputs.some((o, vout) => !isDataScript(o.lockingScript) && !this.isSpentInBlock(txid, vout));
        return unspent ? 'mined-unspent' : 'unknown';
      },
      mempoolSpender: (txid, vout) => {
        const spend = this.spends.get(outpointKey(txid, vout));
        return spend && this.mempool.has(spend.txid) ? spend.txid : undefined;
      },
      spendableOutput: (txid, vout) => {
        const record = this.txs.get(txid);
        if (!record || !this.isVisible(record, now) || this.isSpentInBlock(txid, vout)) return undefined;
        return record.outputs[vout];
      },
      isInMempool: (txid) => this.mempool.has(txid),
      mempoolParents: (txid) => [...new Set((this.txs.get(txid)?.inputs ?? []).map((i) => i.txid))].filter((id) => this.mempool.has(id)),
    };
  }

  /** Adds a validated tx to the mempool; its outputs become spendable once `lagMs` has passed. */
  acceptToMempool(tx: Transaction, fee: number, lagMs = 0): TxRecord {
    const now = this.now();
    const record = this.recordOf(tx, 'tx', fee, now);
    record.visibleAtMs = now + lagMs;
    this.insert(record);
    this.mempool.add(record.txid);
    this.onChange();
    return record;
  }

  /** A funding tx paying `satoshis` to the script, created by fiat; mined at once unless `confirmed` is false. */
  fund(lockingScript: LockingScript, satoshis: number, confirmed: boolean): TxRecord {
    const tx = new Transaction(
      1,
      [{ sourceTXID: NULL_TXID, sourceOutputIndex: 0xffffffff, unlockingScript: uniqueScriptSig('faucet'), sequence: 0xffffffff }],
      [{ lockingScript, satoshis }],
      0,
    );
    const record = this.recordOf(tx, 'faucet', 0, this.now());
    this.insert(record);
    this.mempool.add(record.txid);
    // A block of its own, so funding never confirms anything else as a side effect.
    if (confirmed) this.mineBlock(new Set([record.txid]));
    this.onChange();
    return record;
  }

  /** Mines `count` blocks; the first takes the whole mempool. */
  mine(count: number): Block[] {
    const mined: Block[] = [];
    for (let i = 0; i < count; i++) mined.push(this.mineBlock());
    this.onChange();
    return mined;
  }

  /**
   * Disconnects the last `depth` blocks. Their txs return to the mempool ahead of the txs already there; a tx named
   * in `drop` (as if the competing chain held a conflicting tx) is evicted, and so is every tx whose inputs vanish.
   */
  reorg(depth: number, drop: string[] = []): ReorgOutcome {
    if (!Number.isInteger(depth) || depth < 1 || depth > this.height) {
      throw new RangeError(`depth must be between 1 and ${this.height} (the genesis block stays)`);
    }
    const disconnected = this.blocks.splice(this.blocks.length - depth, depth);
    const returned: string[] = [];
    for (const block of disconnected) {
      for (const txid of block.txids) {
        const record = this.txs.get(txid)!;
        if (record.kind === 'coinbase') {
          this.remove(record);
          continue;
        }
        delete record.blockHeight;
        returned.push(txid);
      }
    }
    const order = [...returned, ...this.mempool];
    this.mempool.clear();
    const evict = new Set(drop);
    const dropped: string[] = [];
    for (const txid of order) {
      const record = this.txs.get(txid)!;
      const inputsPresent = record.inputs.every(
        (i) => this.txs.has(i.txid) && (this.txs.get(i.txid)!.blockHeight !== undefined || this.mempool.has(i.txid)),
      );
      if (evict.has(txid) || !inputsPresent) {
        this.remove(record);
        dropped.push(txid);
        continue;
      }
      this.mempool.add(txid);
    }
    this.onChange();
    return { disconnected: disconnected.map((b) => b.hash), returnedToMempool: returned.filter((id) => this.mempool.has(id)), dropped };
  }

  toSnapshot(): ChainSnapshot {
    const txs = [...this.txs.values()].map(({ rawHex, kind, fee, firstSeenMs }) => ({ rawHex, kind, fee, firstSeenMs }));
    return {
      network: this.network,
      nextNonce: this.nextNonce,
      blocks: this.blocks.map((b) => ({ ...b })),
      txs,
      mempool: [...this.mempool],
    };
  }

  static fromSnapshot(snapshot: ChainSnapshot, now: () => number = Date.now, onChange?: () => void): ChainState {
    const state = new ChainState(snapshot.network, now, onChange, false);
    state.blocks.push(...snapshot.blocks.map((b) => ({ ...b, txids: [...b.txids] })));
    state.nextNonce = snapshot.nextNonce;
    const heights = new Map<string, number>();
    for (const block of state.blocks) for (const txid of block.txids) heights.set(txid, block.height);
    for (const stored of snapshot.txs) {
      const record = state.recordOf(Transaction.fromHex(stored.rawHex), stored.kind, stored.fee, stored.firstSeenMs);
      const height = heights.get(record.txid);
      if (height !== undefined) record.blockHeight = height;
      state.insert(record);
    }
    for (const txid of snapshot.mempool) state.mempool.add(txid);
    return state;
  }

  private mineBlock(only?: Set<string>): Block {
    const prev = this.blocks[this.blocks.length - 1];
    const height = this.blocks.length;
    const included = [...this.mempool].filter((txid) => !only || only.has(txid));
    const coinbase = this.recordOf(coinbaseTx(height), 'coinbase', 0, this.now());
    this.insert(coinbase);
    const txids = [coinbase.txid, ...included];
    const header = {
      version: BLOCK_VERSION,
      prevHash: prev?.hash ?? NULL_TXID,
      merkleRoot: merkleRoot(txids),
      time: Math.max((prev?.time ?? 0) + 1, Math.floor(this.now() / 1000)),
      bits: BLOCK_BITS,
      nonce: this.nextNonce,
    };
    while (!meetsProofOfWork(serializeBlockHeader(header))) header.nonce = (header.nonce + 1) >>> 0;
    this.nextNonce = (header.nonce + 1) >>> 0;
    const block: Block = { height, hash: blockHash(header), ...header, txids };
    this.blocks.push(block);
    for (const txid of txids) this.txs.get(txid)!.blockHeight = height;
    for (const txid of included) this.mempool.delete(txid);
    return block;
  }

  private isVisible(record: TxRecord, now = this.now()): boolean {
    return record.blockHeight !== undefined || record.visibleAtMs <= now;
  }

  private isSpentInBlock(txid: string, vout: number): boolean {
    const spend = this.spends.get(outpointKey(txid, vout));
    return spend !== undefined && !this.mempool.has(spend.txid);
  }

  private recordOf(tx: Transaction, kind: TxRecord['kind'], fee: number, firstSeenMs: number): TxRecord {
    const rawHex = tx.toHex();
    return {
      txid: tx.id('hex'),
      rawHex,
      size: rawHex.length / 2,
      fee,
      kind,
      inputs: kind === 'tx' ? tx.inputs.map((i) => ({ txid: i.sourceTXID!, vout: i.sourceOutputIndex })) : [],
      outputs: tx.outputs.map((o) => ({ satoshis: o.satoshis ?? 0, lockingScript: o.lockingScript, scriptHex: o.lockingScript.toHex() })),
      firstSeenMs,
      visibleAtMs: firstSeenMs,
    };
  }

  private insert(record: TxRecord): void {
    this.txs.set(record.txid, record);
    record.inputs.forEach((input, vin) => this.spends.set(outpointKey(input.txid, input.vout), { txid: record.txid, vin }));
    record.outputs.forEach((output, vout) => {
      if (isDataScript(output.lockingScript)) return;
      let keys = this.outputsByScript.get(output.scriptHex);
      if (!keys) {
        keys = new Set();
        this.outputsByScript.set(output.scriptHex, keys);
        this.scriptByHash.set(scriptHashOf(output.scriptHex), output.scriptHex);
      }
      keys.add(outpointKey(record.txid, vout));
    });
  }

  private remove(record: TxRecord): void {
    this.txs.delete(record.txid);
    this.mempool.delete(record.txid);
    for (const input of record.inputs) {
      const key = outpointKey(input.txid, input.vout);
      if (this.spends.get(key)?.txid === record.txid) this.spends.delete(key);
    }
    record.outputs.forEach((output, vout) => this.outputsByScript.get(output.scriptHex)?.delete(outpointKey(record.txid, vout)));
  }
}

/** A push of random bytes, so every funding and coinbase tx has its own txid. */
function uniqueScriptSig(tag: string): UnlockingScript {
  const data = [...Buffer.from(tag, 'utf8'), ...randomBytes(8)];
  return new UnlockingScript([{ op: data.length, data }]);
}

function coinbaseTx(height: number): Transaction {
  const heightBytes = [height & 0xff, (height >> 8) & 0xff, (height >> 16) & 0xff, (height >> 24) & 0xff];
  const unlockingScript = new UnlockingScript([{ op: 4, data: heightBytes }, ...uniqueScriptSig('patchproof-simulator').chunks]);
  // The simulator pays no block reward: a zero-value data output keeps the coinbase out of every unspent list.
  const lockingScript = new LockingScript([{ op: OP.OP_FALSE }, { op: OP.OP_RETURN }]);
  return new Transaction(
    1,
    [{ sourceTXID: NULL_TXID, sourceOutputIndex: 0xffffffff, unlockingScript, sequence: 0xffffffff }],
    [{ lockingScript, satoshis: 0 }],
  );
}

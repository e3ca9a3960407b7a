import type { Connection } from 'mongoose';
import { anchorTxModel, blockHeaderModel, headerId, type AnchorTxDocument, type ChainNetwork } from '../chainFollower/models';
import type { LocalTip } from '../chainFollower/localChain';
import type { WocTx } from '../woc/client';
import { tscProofRoot } from '../woc/tscProof';
import type { AuditFinding } from './findings';

/** What the audit concluded about one anchor tx from the follower's state alone. */
export type AnchorTxAudit =
  | { state: 'proven'; tx: WocTx }
  /** Not proven yet, within the allowed time: not a discrepancy, its records are counted as awaiting proof. */
  | { state: 'awaiting-proof' }
  | { state: 'discrepancy'; finding: AuditFinding };

export interface AnchorTxAuditorOptions {
  mongo: Connection;
  network: ChainNetwork;
  tip: LocalTip | null;
  /** An unproven tx first tracked longer ago than this is a discrepancy. */
  unprovenAfterMs: number;
  now: Date;
}

/** Txs remembered per audit: records of one batch share one, so each is read and checked once. */
const REMEMBERED_TXS = 20_000;

/**
 * Audits anchor txs against the chain follower's headers: a proven tx's stored TSC proof must recompute (with the
 * follower's own tscProofRoot) to the merkle root of the stored header at its height, that header must be the one
 * it was proven in, and the header must be linked by prev-hash to the local tip. Each tx is checked once per audit.
 */
export function createAnchorTxAuditor(options: AnchorTxAuditorOptions) {
  const checked = new Map<string, Promise<AnchorTxAudit>>();
  const bestChain = createBestChain(options);
  let examined = 0;

  async function audit(txid: string): Promise<AnchorTxAudit> {
    examined++;
    const finding = (code: AuditFinding['code'], detail: string): AnchorTxAudit => ({
      state: 'discrepancy',
      finding: { code, subject: { kind: 'anchor-tx', id: txid }, txid, detail },
    });
    const doc: AnchorTxDocument | null = await anchorTxModel(options.mongo).findById(txid).lean();
    if (!doc) return finding('tx-unproven', 'the chain follower does not track this tx (no anchor_txs document)');
    if (doc.state !== 'proven' || doc.blockHeight === null || !doc.blockHash || !doc.proof || !doc.outputs) {
      const ageMs = options.now.getTime() - doc.createdAt.getTime();
      if (ageMs <= options.unprovenAfterMs) return { state: 'awaiting-proof' };
      return finding('tx-unproven', `not proven ${Math.round(ageMs / 60_000)} min after it was first tracked`);
    }
    const onBest = await bestChain.blockOnBestChain(doc.blockHeight, doc.blockHash);
    if (onBest !== true) return finding('tx-off-best-chain', `block ${doc.blockHash} at height ${doc.blockHeight}: ${onBest}`);
    const header = (await bestChain.header(doc.blockHeight))!;
    let root: string | null;
    try {
      root = tscProofRoot(txid, doc.proof);
    } catch {
      root = null;
    }
    if (doc.proof.target !== header.hash || root !== header.merkleRoot) {
      return finding(
        'tx-proof-mismatch',
        `its Merkle proof leads to ${root ?? 'no root'}, the stored header of block ${header.hash} (height ${header.height}) has merkle root ${header.merkleRoot}`,
      );
    }
    return {
      state: 'proven',
      tx: {
        txid,
        size: 0,
        confirmations: options.tip!.height - doc.blockHeight + 1,
        blockHeight: doc.blockHeight,
        blockHash: doc.blockHash,
        ...(doc.blockTime !== null && { blockTime: doc.blockTime }),
        outputs: doc.outputs,
      },
    };
  }

  return {
    /** The audit of one tx, shared by every record anchored in it. */
    check(txid: string): Promise<AnchorTxAudit> {
      let result = checked.get(txid);
      if (!result) {
        if (checked.size >= REMEMBERED_TXS) checked.delete(checked.keys().next().value!);
        result = audit(txid);
        checked.set(txid, result);
      }
      return result;
    },
    /** Whether this tx was already checked in this audit (its finding, if any, is already reported). */
    seen: (txid: string): boolean => checked.has(txid),
    examined: () => examined,
  };
}

/**
 * The local best chain: stored headers linked by prev-hash from the tip down. Walked once, downwards and only as
 * far as the oldest block asked about; each height's verified hash is kept (about 100 bytes a block).
 */
function createBestChain(options: Pick<AnchorTxAuditorOptions, 'mongo' | 'network' | 'tip'>) {
  const verified = new Map<number, string>();
  let lowest = options.tip ? options.tip.height + 1 : 0;
  let expectedHash = options.tip?.hash ?? null;
  let broken: string | null = options.tip ? null : 'the chain follower has no tip';
  let walking: Promise<void> = Promise.resolve();
  const headers = blockHeaderModel(options.mongo);

  const header = (height: number) => headers.findById(headerId(options.network, height)).lean();

  async function walkDownTo(height: number): Promise<void> {
    while (!broken && lowest > height) {
      const next = lowest - 1;
      const stored = await header(next);
      if (!stored) {
        broken = `no stored header at height ${next}, below which blocks cannot be linked to the tip`;
        break;
      }
      if (stored.hash !== expectedHash) {
        broken = `the stored header at height ${next} is not the one the header above it builds on`;
        break;
      }
      verified.set(next, stored.hash);
      expectedHash = stored.prevHash;
      lowest = next;
    }
  }

  return {
    header,
    /** True, or why not. */
    async blockOnBestChain(height: number, hash: string): Promise<true | string> {
      if (!options.tip) return 'the chain follower has no tip';
      if (height > options.tip.height) return `above the local tip (${options.tip.height})`;
      // One walk at a time: concurrent checks wait for the walk that covers them.
      walking = walking.then(() => walkDownTo(height));
      await walking;
      const best = verified.get(height);
      if (best === undefined) return broken ?? 'not linked to the local tip';
      return best === hash ? true : `the local best chain has block ${best} at that height`;
    },
  };
}

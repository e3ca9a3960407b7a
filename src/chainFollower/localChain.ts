import type { Connection } from 'mongoose';
import type { WocClient, WocTx } from '../woc/client';
import { anchorTxModel, chainTipModel, type ChainNetwork, type ChainTipDocument } from './models';

/**
 * Puts an anchor tx on the follower's work list. Idempotent: a tx already listed (or already proven) is left as
 * it is, and two racing inserts end with one document.
 */
export async function trackAnchorTx(mongo: Connection, network: ChainNetwork, txid: string): Promise<void> {
  const now = new Date();
  try {
    await anchorTxModel(mongo).updateOne(
      { _id: txid },
      {
        $setOnInsert: {
          network,
          state: 'unproven',
          blockHeight: null,
          blockHash: null,
          blockTime: null,
          proof: null,
          outputs: null,
          provenAt: null,
          createdAt: now,
          updatedAt: now,
        },
      },
      { upsert: true },
    );
  } catch (err) {
    if ((err as { code?: unknown }).code !== 11000) throw err;
  }
}

export interface LocalTip {
  height: number;
  hash: string;
  /** Block time of the tip, seconds since the epoch. */
  time: number;
  syncedAt: Date;
}

export async function loadLocalTip(mongo: Connection, network: ChainNetwork): Promise<LocalTip | null> {
  const tip: ChainTipDocument | null = await chainTipModel(mongo).findById(network).lean();
  return tip && { height: tip.height, hash: tip.hash, time: tip.time, syncedAt: tip.syncedAt };
}

/** Where a verification's chain facts came from: the follower's headers alone, or (for an untracked tx) the chain service. */
export type ChainSource = 'local' | 'chain-service';

export interface LocalChainLookup extends Pick<WocClient, 'getTx'> {
  readonly tip: LocalTip | null;
  /** `chain-service` once any lookup had to ask it. */
  source(): ChainSource;
}

/**
 * Chain lookups for verification answered from MongoDB: a proven anchor tx with confirmations counted from the
 * local tip, no request made. A tracked tx not proven yet is unknown to the local chain (the verdict is pending)
 * rather than asked about: the follower proves it within a poll. Only a tx the follower has never been told about
 * (anchored before it existed) is looked up on the chain service, once, and then put on its work list.
 */
export async function localChainLookup(deps: { mongo: Connection; network: ChainNetwork; woc: Pick<WocClient, 'getTx'> }): Promise<LocalChainLookup> {
  const tip = await loadLocalTip(deps.mongo, deps.network);
  let source: ChainSource = 'local';
  return {
    tip,
    source: () => source,
    async getTx(txid: string): Promise<WocTx | null> {
      const stored = await anchorTxModel(deps.mongo).findById(txid).lean();
      if (!stored) {
        source = 'chain-service';
        const tx = await deps.woc.getTx(txid);
        await trackAnchorTx(deps.mongo, deps.network, txid);
        return tx;
      }
      if (stored.state !== 'proven' || stored.blockHeight === null || !stored.outputs || !tip || tip.height < stored.blockHeight) {
        return null;
      }
      return {
        txid,
        size: 0,
        confirmations: tip.height - stored.blockHeight + 1,
        blockHeight: stored.blockHeight,
        ...(stored.blockHash && { blockHash: stored.blockHash }),
        ...(stored.blockTime !== null && { blockTime: stored.blockTime }),
        outputs: stored.outputs,
      };
    },
  };
}

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

/** The tip changes once a block (minutes); every verification in the same second shares one read of it. */
const TIP_REUSE_MS = 1_000;
type RecentTip = { tip: Promise<LocalTip | null>; readAt: number };
const recentTips = new WeakMap<Connection, Map<ChainNetwork, RecentTip>>();

function sharedLocalTip(mongo: Connection, network: ChainNetwork): Promise<LocalTip | null> {
  const byNetwork = recentTips.get(mongo) ?? new Map<ChainNetwork, RecentTip>();
  recentTips.set(mongo, byNetwork);
  const recent = byNetwork.get(network);
  if (recent && Date.now() - recent.readAt < TIP_REUSE_MS) return recent.tip;
  const tip = loadLocalTip(mongo, network);
  byNetwork.set(network, { tip, readAt: Date.now() });
  // A failed read is not shared.
  tip.catch(() => byNetwork.delete(network));
  return tip;
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
 * local tip, no request made. A tx the follower has not proven yet (just anchored, or in a block it has not synced,
 * or one it was never told of, which is then put on its list) is looked up on the chain service instead, as before
 * the follower existed: without it a record would read pending for up to a poll after it was anchored.
 */
export async function localChainLookup(deps: {
  mongo: Connection;
  network: ChainNetwork;
  woc: Pick<WocClient, 'getTx'>;
}): Promise<LocalChainLookup> {
  const tip = await sharedLocalTip(deps.mongo, deps.network);
  let source: ChainSource = 'local';
  return {
    tip,
    source: () => source,
    async getTx(txid: string): Promise<WocTx | null> {
      const stored = await anchorTxModel(deps.mongo).findById(txid).lean();
      if (
        !stored ||
        stored.state !== 'proven' ||
        stored.blockHeight === null ||
        !stored.outputs ||
        !tip ||
        tip.height < stored.blockHeight
      ) {
        source = 'chain-service';
        const tx = await deps.woc.getTx(txid);
        if (!stored) await trackAnchorTx(deps.mongo, deps.network, txid);
        return tx;
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

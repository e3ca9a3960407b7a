import type { Connection } from 'mongoose';
import type { WocClient, WocTx } from '../woc/client';
import { anchorTxModel, chainTipModel, type ChainNetwork, type ChainTipDocument } from './models';

/**
 * Puts an anchor tx on the follower's work list, with its signed bytes when the caller has them (at broadcast).
 * Idempotent: a tx already listed (or already proven) keeps its state, and two racing inserts end with one document;
 * the bytes of a txid are always the same bytes, so writing them again changes nothing.
 */
export async function trackAnchorTx(mongo: Connection, network: ChainNetwork, txid: string, rawHex?: string): Promise<void> {
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
          ...(rawHex === undefined && { rawHex: null }),
          provenAt: null,
          createdAt: now,
          updatedAt: now,
        },
        ...(rawHex !== undefined && { $set: { rawHex } }),
      },
      { upsert: true },
    );
  } catch (err) {
    if ((err as { code?: unknown }).code !== 11000) throw err;
    if (rawHex !== undefined) await anchorTxModel(mongo).updateOne({ _id: txid }, { $set: { rawHex } });
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

/**
 * The tip and a tx's proof change once a block at most (minutes): every verification in the same second shares one
 * read of each, which is what lets one process answer hundreds of taps a second on the embedded database.
 */
const SHARED_READ_MS = 1_000;
const SHARED_READS_MAX = 10_000;
type SharedRead = { value: Promise<unknown>; readAt: number };
const sharedReads = new WeakMap<Connection, Map<string, SharedRead>>();

function sharedRead<T>(mongo: Connection, key: string, read: () => Promise<T>): Promise<T> {
  const reads = sharedReads.get(mongo) ?? new Map<string, SharedRead>();
  sharedReads.set(mongo, reads);
  const recent = reads.get(key);
  if (recent && Date.now() - recent.readAt < SHARED_READ_MS) return recent.value as Promise<T>;
  if (reads.size >= SHARED_READS_MAX) reads.clear();
  // Through a promise: a mongoose query runs again (and refuses to) each time it is awaited.
  const value = Promise.resolve().then(read);
  reads.set(key, { value, readAt: Date.now() });
  // A failed read is not shared.
  value.catch(() => reads.delete(key));
  return value;
}

/** The local tip, read at most once a second per process. */
export function sharedLocalTip(mongo: Connection, network: ChainNetwork): Promise<LocalTip | null> {
  return sharedRead(mongo, `tip:${network}`, () => loadLocalTip(mongo, network));
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
      const stored = await sharedRead(deps.mongo, `tx:${txid}`, () => anchorTxModel(deps.mongo).findById(txid).lean());
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

import type { Redis } from 'ioredis';
import { announceVerdictChange } from '../../src/registration/verdictChanges';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Hash, Transaction, Utils } from '@bsv/sdk';
import type { Connection } from 'mongoose';
import { parseAnchorScript } from '../../src/anchoring/anchorScript';
import {
  anchorTxModel,
  blockHeaderModel,
  chainTipModel,
  headerId,
  type AnchorTxDocument,
  type BlockHeaderDocument,
  type ChainNetwork,
} from '../../src/chainFollower/models';
import { storedHeaderBytes } from '../../src/chainFollower/proofMaterial';
import type { Logger } from '../../src/logging/logger';
import type { WocBlockHeader, WocClient } from '../../src/woc/client';
import { tscProofRoot } from '../../src/woc/tscProof';
import type { HeaderSyncResult, ProveResult, RollBackResult } from '../../workflows/chainFollower/shared';

export interface ChainFollowerActivityDeps {
  mongo: Connection;
  /** API processes are told when a rollback may change verification answers they keep. */
  redis?: Pick<Redis, 'publish'>;
  woc: WocClient;
  logger: Logger;
  chainFollower: {
    /** First height to follow from on an empty store; unset: `backfillBlocks` below the tip. */
    startHeight?: number;
    backfillBlocks: number;
    /** A fork deeper than this is refused (non-retryable) rather than rolled back: an operator looks first. */
    maxReorgDepth: number;
  };
}

export const CHAIN_FOLLOWER_FAILURES = { reorgTooDeep: 'ChainReorgTooDeep' } as const;

/**
 * The follower's activities. Each is idempotent (writes are keyed by `_id`, a retry rewrites the same documents),
 * does a bounded batch, and heartbeats per chain request.
 */
export function createChainFollowerActivities(deps: ChainFollowerActivityDeps) {
  return {
    syncChainHeaders: (input: { network: ChainNetwork; maxHeaders: number }) => syncChainHeaders(deps, input),
    rollBackChain: (input: { network: ChainNetwork; forkHeight: number }) => rollBackChain(deps, input),
    proveAnchorTxs: (input: { network: ChainNetwork; limit: number }) => proveAnchorTxs(deps, input),
  };
}

function heartbeat(details: Record<string, unknown>): void {
  Context.current().heartbeat(details);
}

async function storeHeader(mongo: Connection, network: ChainNetwork, header: WocBlockHeader): Promise<void> {
  // Only ever written above the tip, where no tx has been proven yet; a retry rewrites the same block.
  await blockHeaderModel(mongo).updateOne(
    { _id: headerId(network, header.height) },
    {
      $set: {
        network,
        height: header.height,
        hash: header.hash,
        prevHash: header.previousBlockHash ?? '0'.repeat(64),
        merkleRoot: header.merkleRoot,
        time: header.time,
        version: header.version ?? null,
        bits: header.bits ?? null,
        nonce: header.nonce ?? null,
        anchorTxids: [],
      },
    },
    { upsert: true },
  );
}

async function setTip(mongo: Connection, network: ChainNetwork, tip: { height: number; hash: string; time: number }): Promise<void> {
  const { height, hash, time } = tip;
  await chainTipModel(mongo).updateOne({ _id: network }, { $set: { height, hash, time, syncedAt: new Date() } }, { upsert: true });
}

async function requiredHeader(woc: WocClient, height: number): Promise<WocBlockHeader> {
  const header = await woc.getBlockHeader(height);
  // The chain service said it has this height; not serving it is a transient inconsistency, worth a retry.
  if (!header) throw ApplicationFailure.retryable(`the chain service has no header at height ${height}`, 'ChainHeaderMissing');
  return header;
}

/**
 * Appends up to `maxHeaders` headers after the local tip, each checked to build on the one before. A header that
 * does not (or a chain service whose tip is not ours at our height) means a fork: the common block is found by
 * comparing hashes downwards and reported, without writing, so the workflow rolls back first.
 */
async function syncChainHeaders(
  deps: ChainFollowerActivityDeps,
  input: { network: ChainNetwork; maxHeaders: number },
): Promise<HeaderSyncResult> {
  const { mongo, woc, network } = { ...deps, network: input.network };
  const info = await woc.getChainInfo();
  heartbeat({ remoteTip: info.blocks });
  const stored = await chainTipModel(mongo).findById(network).lean();
  let tip: { height: number; hash: string; time: number };
  if (stored) {
    tip = stored;
  } else {
    const start = deps.chainFollower.startHeight ?? Math.max(0, info.blocks - deps.chainFollower.backfillBlocks);
    const first = await requiredHeader(woc, Math.min(start, info.blocks));
    await storeHeader(mongo, network, first);
    await setTip(mongo, network, first);
    tip = first;
  }
  if (info.blocks < tip.height || (info.blocks === tip.height && info.bestBlockHash !== tip.hash)) {
    return { status: 'reorg', tipHeight: tip.height, added: 0, behind: 0, forkHeight: await forkHeight(deps, network, info.blocks) };
  }
  let added = 0;
  let current = { height: tip.height, hash: tip.hash, time: tip.time };
  const last = Math.min(info.blocks, tip.height + input.maxHeaders);
  for (let height = tip.height + 1; height <= last; height++) {
    const header = await requiredHeader(woc, height);
    heartbeat({ height });
    if (header.previousBlockHash !== current.hash) {
      if (added > 0) await setTip(mongo, network, current);
      return {
        status: 'reorg',
        tipHeight: current.height,
        added,
        behind: info.blocks - current.height,
        forkHeight: await forkHeight(deps, network, current.height),
      };
    }
    await storeHeader(mongo, network, header);
    current = { height: header.height, hash: header.hash, time: header.time };
    added++;
  }
  await setTip(mongo, network, current);
  return { status: 'extended', tipHeight: current.height, added, behind: info.blocks - current.height };
}

/** The highest height at or below `from` where our header and the chain service's are the same block. */
async function forkHeight(deps: ChainFollowerActivityDeps, network: ChainNetwork, from: number): Promise<number> {
  const headers = blockHeaderModel(deps.mongo);
  for (let height = from, depth = 0; height >= 0; height--, depth++) {
    if (depth > deps.chainFollower.maxReorgDepth) {
      throw ApplicationFailure.nonRetryable(
        `fork deeper than ${deps.chainFollower.maxReorgDepth} blocks below height ${from}`,
        CHAIN_FOLLOWER_FAILURES.reorgTooDeep,
      );
    }
    const local = await headers.findById(headerId(network, height)).lean();
    // Below the first stored header there is nothing of ours to disagree with.
    if (!local) return height;
    const remote = await deps.woc.getBlockHeader(height);
    heartbeat({ forkSearch: height });
    if (remote && remote.hash === local.hash) return height;
  }
  return -1;
}

/**
 * Removes every header above `forkHeight` and clears the proof of each anchor tx proven in them, so the follower
 * proves it again in whatever block it is mined into next. Proofs are cleared before their header is deleted, so a
 * retry after a crash still finds them.
 */
async function rollBackChain(
  deps: ChainFollowerActivityDeps,
  input: { network: ChainNetwork; forkHeight: number },
): Promise<RollBackResult> {
  const { mongo, network } = { ...deps, network: input.network };
  const headers = blockHeaderModel(mongo);
  const tip = await chainTipModel(mongo).findById(network).lean();
  const unproven: string[] = [];
  let removedHeaders = 0;
  for (let height = tip?.height ?? input.forkHeight; height > input.forkHeight; height--) {
    const header = await headers.findById(headerId(network, height)).lean();
    if (!header) continue;
    for (const txid of header.anchorTxids) {
      await anchorTxModel(mongo).updateOne(
        { _id: txid, blockHash: header.hash },
        {
          $set: {
            state: 'unproven',
            blockHeight: null,
            blockHash: null,
            blockTime: null,
            proof: null,
            provenAt: null,
            updatedAt: new Date(),
          },
        },
      );
      unproven.push(txid);
    }
    await headers.deleteOne({ _id: header._id });
    removedHeaders++;
  }
  const base = input.forkHeight >= 0 ? await headers.findById(headerId(network, input.forkHeight)).lean() : null;
  if (base) await setTip(mongo, network, base);
  else await chainTipModel(mongo).deleteOne({ _id: network });
  // Verdicts kept by API processes may rest on the removed blocks.
  if (unproven.length > 0) await announceVerdictChange(deps.redis, 'all', deps.logger);
  deps.logger.onChain.warn('chain reorg rolled back', { network, forkHeight: input.forkHeight, removedHeaders, unproven });
  return { removedHeaders, unproven };
}

/** The anchor outputs of a raw tx, after checking that the bytes hash to the txid they were asked for. */
function anchorOutputs(txid: string, rawHex: string): NonNullable<AnchorTxDocument['outputs']> {
  const hashed = Utils.toHex(Hash.hash256(Utils.toArray(rawHex, 'hex') as number[]).reverse());
  if (hashed !== txid) throw ApplicationFailure.retryable(`the chain service served other bytes for ${txid}`, 'ChainServiceMismatch');
  return Transaction.fromHex(rawHex)
    .outputs.map((o, vout) => ({ vout, satoshis: o.satoshis ?? 0, scriptHex: o.lockingScript.toHex() }))
    .filter((o) => parseAnchorScript(o.scriptHex) !== null);
}

/**
 * A stored header with the whole 80-byte header: one stored before the follower kept version, bits and nonce gets
 * them from the chain service, accepted only if the rebuilt header hashes to the stored block hash. Null when the
 * chain service does not have the block (any more).
 */
async function completeHeader(deps: ChainFollowerActivityDeps, header: BlockHeaderDocument): Promise<BlockHeaderDocument | null> {
  if (storedHeaderBytes(header)) return header;
  const remote = await deps.woc.getBlockHeader(header.hash);
  if (!remote || remote.version === undefined || remote.bits === undefined || remote.nonce === undefined) return null;
  const complete = { ...header, version: remote.version, bits: remote.bits, nonce: remote.nonce };
  if (!storedHeaderBytes(complete)) {
    deps.logger.onChain.warn('the chain service served a header that does not hash to the stored block', { block: header.hash });
    return null;
  }
  await blockHeaderModel(deps.mongo).updateOne(
    { _id: header._id, hash: header.hash },
    { $set: { version: complete.version, bits: complete.bits, nonce: complete.nonce } },
  );
  return complete;
}

/**
 * Proves up to `limit` waiting anchor txs: fetches each one's TSC Merkle proof, recomputes the root from the txid,
 * and accepts it only when it equals the merkle root of our stored header for the proof's block (at or below our
 * tip). The tx's bytes (kept at broadcast, or fetched) and the whole header are stored with it, so a proof bundle
 * is built from MongoDB alone. A tx still in the mempool, or in a block we have not synced yet, waits for the next
 * round. Then, at most every COMPLETION_INTERVAL_MS, proven txs from before bytes and headers were kept are completed.
 */
async function proveAnchorTxs(deps: ChainFollowerActivityDeps, input: { network: ChainNetwork; limit: number }): Promise<ProveResult> {
  const { mongo, woc, network } = { ...deps, network: input.network };
  const tip = await chainTipModel(mongo).findById(network).lean();
  if (!tip) return { examined: 0, proven: 0, more: false };
  const waiting = await anchorTxModel(mongo).find({ state: 'unproven', network }).limit(input.limit).lean();
  let proven = 0;
  for (const tx of waiting) {
    heartbeat({ txid: tx._id });
    const proof = await woc.getMerkleProof(tx._id);
    if (!proof) continue;
    const stored = await blockHeaderModel(mongo).findOne({ hash: proof.target }).lean();
    if (!stored || stored.network !== network || stored.height > tip.height) continue;
    if (tscProofRoot(tx._id, proof) !== stored.merkleRoot) {
      deps.logger.onChain.warn('anchor tx proof does not lead to its block header', { txid: tx._id, block: stored.hash });
      continue;
    }
    const header = await completeHeader(deps, stored);
    const rawHex = tx.rawHex ?? (await woc.getRawTx(tx._id));
    if (!header || !rawHex) continue;
    const outputs = anchorOutputs(tx._id, rawHex);
    // The header learns of the tx first, so a rollback that removes the header always finds the tx to clear.
    await blockHeaderModel(mongo).updateOne({ _id: header._id, hash: header.hash }, { $addToSet: { anchorTxids: tx._id } });
    const now = new Date();
    await anchorTxModel(mongo).updateOne(
      { _id: tx._id },
      {
        $set: {
          state: 'proven',
          blockHeight: header.height,
          blockHash: header.hash,
          blockTime: header.time,
          proof,
          outputs,
          rawHex,
          provenAt: now,
          updatedAt: now,
        },
      },
    );
    proven++;
  }
  await completeProvenAnchorTxs(deps, network, input.limit);
  return { examined: waiting.length, proven, more: waiting.length === input.limit && proven === waiting.length };
}

/** How often a worker looks for proven anchor txs that lack their bytes or their block's whole header. */
const COMPLETION_INTERVAL_MS = 10 * 60_000;
const lastCompletion = new Map<ChainNetwork, number>();

/**
 * Fills in what proof bundles need for anchor txs proven before the follower kept it: the tx's bytes and the
 * header's version, bits and nonce. The query is a scan, hence rare: once per interval per worker process, bounded.
 */
async function completeProvenAnchorTxs(deps: ChainFollowerActivityDeps, network: ChainNetwork, limit: number): Promise<void> {
  if (Date.now() - (lastCompletion.get(network) ?? 0) < COMPLETION_INTERVAL_MS) return;
  const { mongo, woc } = deps;
  const bare = await anchorTxModel(mongo).find({ state: 'proven', network, rawHex: null }).limit(limit).lean();
  for (const tx of bare) {
    heartbeat({ completing: tx._id });
    const rawHex = await woc.getRawTx(tx._id);
    if (!rawHex) continue;
    anchorOutputs(tx._id, rawHex);
    await anchorTxModel(mongo).updateOne({ _id: tx._id }, { $set: { rawHex, updatedAt: new Date() } });
  }
  const headers = await blockHeaderModel(mongo)
    .find({ network, version: null, 'anchorTxids.0': { $exists: true } })
    .limit(limit)
    .lean();
  for (const header of headers) {
    heartbeat({ completing: header.hash });
    await completeHeader(deps, header);
  }
  // Done only when nothing was left over: a full batch means more may wait, so the next round looks again.
  if (bare.length < limit && headers.length < limit) lastCompletion.set(network, Date.now());
}

import type { Connection } from 'mongoose';
import { patchModel } from '../registration/models';
import { transferModel } from '../transfer/models';

/**
 * Records whose anchor tx a reorg took off the chain go back to `anchoring`, marked with `anchor.leftChainAt`, so the
 * API and the audit show them as not anchored until the tx is mined again. Both writes are single statements and
 * idempotent (only `anchored` records move), so a retried rollback changes nothing twice.
 */
export async function moveRecordsOffChain(mongo: Connection, txids: readonly string[], now: Date): Promise<number> {
  if (txids.length === 0) return 0;
  const update = { $set: { status: 'anchoring' as const, 'anchor.leftChainAt': now, updatedAt: now } };
  const [patches, transfers] = await Promise.all([
    patchModel(mongo).updateMany({ 'anchor.txid': { $in: [...txids] }, status: 'anchored' }, update),
    transferModel(mongo).updateMany({ 'anchor.txid': { $in: [...txids] }, status: 'anchored' }, update),
  ]);
  return patches.modifiedCount + transfers.modifiedCount;
}

/** The records a reorg moved back to `anchoring` are anchored again once their tx is proven in `blockHeight`. */
export async function restoreRecordsOnChain(mongo: Connection, txid: string, blockHeight: number, now: Date): Promise<number> {
  const filter = { 'anchor.txid': txid, status: 'anchoring' as const, 'anchor.leftChainAt': { $exists: true } };
  const update = {
    $set: { status: 'anchored' as const, 'anchor.blockHeight': blockHeight, updatedAt: now },
    $unset: { 'anchor.leftChainAt': '' },
  };
  const [patches, transfers] = await Promise.all([
    patchModel(mongo).updateMany(filter, update),
    transferModel(mongo).updateMany(filter, update),
  ]);
  return patches.modifiedCount + transfers.modifiedCount;
}

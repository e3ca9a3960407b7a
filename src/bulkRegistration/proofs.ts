import type { Connection } from 'mongoose';
import { merkleProofAt } from '../anchoring/merkle';
import type { PatchDocument } from '../registration/models';
import type { AnchoredRecordProof } from '../registration/proofBundle';
import { batchChunkId } from './ids';
import { patchBatchChunkModel } from './models';

/**
 * The signed-tree-head part of a bulk-registered record's proof, rebuilt from its chunk: the record's inclusion path
 * under the chunk's root, the issuer's signature over the tree head, and the tree head's path in the anchor tree.
 * Null until the chunk is signed and broadcast.
 */
export async function bulkRecordProof(
  mongo: Connection,
  patch: Pick<PatchDocument, 'batchId' | 'batchChunk' | 'recordHash'>,
): Promise<Pick<AnchoredRecordProof, 'signedTreeHead' | 'issuerSignature' | 'anchor'> | null> {
  if (!patch.batchId || patch.batchChunk === null || patch.batchChunk === undefined) return null;
  const chunk = await patchBatchChunkModel(mongo).findById(batchChunkId(patch.batchId, patch.batchChunk)).lean();
  if (!chunk?.treeHead || !chunk.issuerSignature || !chunk.anchor) return null;
  const leafIndex = chunk.recordHashes.indexOf(patch.recordHash);
  if (leafIndex < 0) return null;
  return {
    signedTreeHead: { treeHead: chunk.treeHead, inclusion: merkleProofAt(chunk.recordHashes, leafIndex) },
    issuerSignature: chunk.issuerSignature,
    anchor: { ...chunk.anchor.proof, txid: chunk.anchor.txid, vout: chunk.anchor.vout, blockHeight: chunk.anchor.blockHeight },
  };
}

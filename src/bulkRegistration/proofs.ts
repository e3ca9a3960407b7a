import type { Connection } from 'mongoose';
import { merkleProofs, type MerkleProof } from '../anchoring/merkle';
import type { PatchDocument } from '../registration/models';
import type { AnchoredRecordProof } from '../registration/proofBundle';
import { batchChunkId } from './ids';
import { patchBatchChunkModel, type PatchBatchChunkDocument } from './models';

/** Chunks whose inclusion proofs this process has built; a signed chunk's record hashes never change. */
const CACHED_CHUNKS = 64;
const chunkProofs = new Map<string, MerkleProof[]>();
/** Anchored chunks as read once: nothing in them changes after that, and each is ~70 kB to read per verification. */
const anchoredChunks = new WeakMap<Connection, Map<string, PatchBatchChunkDocument>>();

async function loadChunk(mongo: Connection, chunkId: string): Promise<PatchBatchChunkDocument | null> {
  const cached = anchoredChunks.get(mongo)?.get(chunkId);
  if (cached) return cached;
  const chunk = await patchBatchChunkModel(mongo).findById(chunkId).lean();
  if (chunk?.state === 'anchored') {
    const chunks = anchoredChunks.get(mongo) ?? new Map<string, PatchBatchChunkDocument>();
    if (chunks.size >= CACHED_CHUNKS) chunks.delete(chunks.keys().next().value!);
    chunks.set(chunkId, chunk);
    anchoredChunks.set(mongo, chunks);
  }
  return chunk;
}

/** Every record's inclusion path of a signed chunk, built once per process: one tree is 2,000 hashes. */
function signedChunkProofs(chunkId: string, recordHashes: string[]): MerkleProof[] {
  let proofs = chunkProofs.get(chunkId);
  if (!proofs) {
    proofs = merkleProofs(recordHashes);
    if (chunkProofs.size >= CACHED_CHUNKS) chunkProofs.delete(chunkProofs.keys().next().value!);
    chunkProofs.set(chunkId, proofs);
  }
  return proofs;
}

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
  const chunkId = batchChunkId(patch.batchId, patch.batchChunk);
  const chunk = await loadChunk(mongo, chunkId);
  if (!chunk?.treeHead || !chunk.issuerSignature || !chunk.anchor) return null;
  const leafIndex = chunk.recordHashes.indexOf(patch.recordHash);
  if (leafIndex < 0) return null;
  return {
    signedTreeHead: { treeHead: chunk.treeHead, inclusion: signedChunkProofs(chunkId, chunk.recordHashes)[leafIndex]! },
    issuerSignature: chunk.issuerSignature,
    anchor: { ...chunk.anchor.proof, txid: chunk.anchor.txid, vout: chunk.anchor.vout, blockHeight: chunk.anchor.blockHeight },
  };
}

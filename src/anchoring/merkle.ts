import { createHash } from 'node:crypto';

/**
 * The batch-anchoring Merkle tree (DESIGN.md "Anchoring"). Domain-separated so a leaf can never pass for an inner
 * node: leaf = sha256(0x00 ‖ recordHash), node = sha256(0x01 ‖ left ‖ right). An odd node at the end of a level is
 * promoted unchanged, never paired with a copy of itself (duplicating it lets two different batches share a root).
 * Every path step says on which side the sibling sits, so a proof is checkable without knowing the tree's shape.
 */

export type Hex = string;

export interface MerklePathStep {
  /** The sibling's side: `L` means sibling ‖ current, `R` means current ‖ sibling. */
  side: 'L' | 'R';
  hash: Hex;
}

export interface MerkleProof {
  leaf: Hex;
  index: number;
  count: number;
  path: MerklePathStep[];
  root: Hex;
}

const HEX32 = /^[0-9a-f]{64}$/;

function bytes(hex: Hex): Buffer {
  if (!HEX32.test(hex)) throw new RangeError('expected 32 bytes as 64 lower-case hex characters');
  return Buffer.from(hex, 'hex');
}

// OpenSSL's SHA-256: verification rebuilds a chunk's tree of 1,000 leaves, which the JavaScript hash makes ~40 ms.
const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

export function leafHash(recordHash: Hex): Hex {
  return createHash('sha256').update(LEAF_PREFIX).update(bytes(recordHash)).digest('hex');
}

export function nodeHash(left: Hex, right: Hex): Hex {
  return createHash('sha256').update(NODE_PREFIX).update(bytes(left)).update(bytes(right)).digest('hex');
}

/** The levels of the tree, leaves first, root last. */
function levels(recordHashes: Hex[]): Hex[][] {
  if (recordHashes.length === 0) throw new RangeError('a Merkle tree needs at least one record');
  const all: Hex[][] = [recordHashes.map(leafHash)];
  while (all[all.length - 1]!.length > 1) {
    const level = all[all.length - 1]!;
    const next: Hex[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? nodeHash(level[i]!, level[i + 1]!) : level[i]!);
    all.push(next);
  }
  return all;
}

export function merkleRoot(recordHashes: Hex[]): Hex {
  const all = levels(recordHashes);
  return all[all.length - 1]![0]!;
}

/** One proof per record, in input order. */
export function merkleProofs(recordHashes: Hex[]): MerkleProof[] {
  const all = levels(recordHashes);
  return recordHashes.map((_, index) => proofFromLevels(all, index));
}

/** The proof of one record (e.g. one of a stored chunk's records). */
export function merkleProofAt(recordHashes: Hex[], index: number): MerkleProof {
  if (!Number.isInteger(index) || index < 0 || index >= recordHashes.length) throw new RangeError('no such leaf');
  return proofFromLevels(levels(recordHashes), index);
}

function proofFromLevels(all: Hex[][], index: number): MerkleProof {
  const path: MerklePathStep[] = [];
  let position = index;
  for (const level of all.slice(0, -1)) {
    const sibling = position % 2 === 0 ? position + 1 : position - 1;
    // A promoted node has no sibling at this level: no step.
    if (sibling < level.length) path.push({ side: position % 2 === 0 ? 'R' : 'L', hash: level[sibling]! });
    position = Math.floor(position / 2);
  }
  return { leaf: all[0]![index]!, index, count: all[0]!.length, path, root: all[all.length - 1]![0]! };
}

/** Recomputes the root from a record hash and its proof; true only if it matches and the path fits the tree shape. */
export function verifyMerkleProof(recordHash: Hex, proof: MerkleProof): boolean {
  if (!Number.isInteger(proof.index) || !Number.isInteger(proof.count) || proof.index < 0 || proof.index >= proof.count) return false;
  let current: Hex;
  try {
    current = leafHash(recordHash);
  } catch {
    return false;
  }
  if (current !== proof.leaf) return false;
  // The shape (count, index) fixes which steps exist and on which side: a path from another shape is refused.
  let position = proof.index;
  let width = proof.count;
  let step = 0;
  while (width > 1) {
    const sibling = position % 2 === 0 ? position + 1 : position - 1;
    if (sibling < width) {
      const next = proof.path[step++];
      const side = position % 2 === 0 ? 'R' : 'L';
      if (!next || next.side !== side || !HEX32.test(next.hash)) return false;
      current = side === 'R' ? nodeHash(current, next.hash) : nodeHash(next.hash, current);
    }
    position = Math.floor(position / 2);
    width = Math.ceil(width / 2);
  }
  return step === proof.path.length && current === proof.root;
}

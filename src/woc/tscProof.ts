import { Hash, Utils } from '@bsv/sdk';

/** A TSC Merkle proof as WhatsOnChain serves it (`/tx/{txid}/proof/tsc`), target being the block hash. */
export interface TscProof {
  index: number;
  txOrId: string;
  target: string;
  nodes: string[];
}

/**
 * The Merkle root a TSC proof leads to from `txid`: hash256 up the tree, the sibling on the left when the position
 * is odd, `*` standing for the node itself. Hashes are display-order hex. Compare the result with the block
 * header's `merkleroot` to verify the proof.
 */
export function tscProofRoot(txid: string, proof: Pick<TscProof, 'index' | 'nodes'>): string {
  if (!Number.isInteger(proof.index) || proof.index < 0) throw new RangeError('proof index must be a whole number');
  let current = (Utils.toArray(txid, 'hex') as number[]).reverse();
  let position = proof.index;
  for (const node of proof.nodes) {
    const sibling = node === '*' ? current : (Utils.toArray(node, 'hex') as number[]).reverse();
    current = position % 2 === 1 ? Hash.hash256([...sibling, ...current]) : Hash.hash256([...current, ...sibling]);
    position = Math.floor(position / 2);
  }
  if (position !== 0) throw new RangeError('proof index is beyond the tree the nodes describe');
  return Utils.toHex(current.reverse());
}

import { Hash, Utils } from '@bsv/sdk';

/**
 * Block Merkle trees as the node builds them: hash256 of the concatenated children, the last node of an odd level
 * paired with itself. Hashes are given and returned in display (byte-reversed) hex, as txids and block hashes are.
 */

function toInternal(displayHex: string): number[] {
  return (Utils.toArray(displayHex, 'hex') as number[]).reverse();
}

function toDisplay(internal: number[]): string {
  return Utils.toHex([...internal].reverse());
}

function nextLevel(level: number[][]): number[][] {
  const next: number[][] = [];
  for (let i = 0; i < level.length; i += 2) {
    const left = level[i]!;
    const right = level[i + 1] ?? left;
    next.push(Hash.hash256([...left, ...right]));
  }
  return next;
}

export function merkleRoot(txids: string[]): string {
  if (txids.length === 0) throw new RangeError('a block holds at least its coinbase');
  let level = txids.map(toInternal);
  while (level.length > 1) level = nextLevel(level);
  return toDisplay(level[0]!);
}

/** TSC proof nodes for the tx at `index`, bottom-up; `*` marks a node paired with itself (TSC spec). */
export function tscProofNodes(txids: string[], index: number): string[] {
  if (!Number.isInteger(index) || index < 0 || index >= txids.length) throw new RangeError(`no tx at index ${index}`);
  const nodes: string[] = [];
  let level = txids.map(toInternal);
  let position = index;
  while (level.length > 1) {
    const siblingPosition = position ^ 1;
    nodes.push(siblingPosition < level.length ? toDisplay(level[siblingPosition]!) : '*');
    level = nextLevel(level);
    position >>= 1;
  }
  return nodes;
}

/** The Merkle root a TSC proof leads to from `txid`. */
export function rootFromTscNodes(txid: string, index: number, nodes: string[]): string {
  let current = toInternal(txid);
  let position = index;
  for (const node of nodes) {
    const sibling = node === '*' ? current : toInternal(node);
    current = position & 1 ? Hash.hash256([...sibling, ...current]) : Hash.hash256([...current, ...sibling]);
    position >>= 1;
  }
  return toDisplay(current);
}

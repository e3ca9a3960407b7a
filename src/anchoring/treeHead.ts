import { canonicalHash, wholeSecondsIso } from './canonical';

/**
 * What the issuer signs for a chunk of bulk-registered records, as Certificate Transparency signs a tree head
 * (RFC 6962): the Merkle root of the chunk's record hashes, how many there are, and when. A record's inclusion
 * proof under this root, plus the signature over the tree head, stands for a signature over the record itself
 * (docs/PROOFS.md, "Signed tree heads").
 */
export interface TreeHead {
  [key: string]: string | number;
  v: 1;
  kind: 'patchproof.tree-head';
  root: string;
  size: number;
  /** ISO 8601, whole seconds, UTC. */
  issuedAt: string;
}

export function treeHead(root: string, size: number, issuedAt: Date): TreeHead {
  return { v: 1, kind: 'patchproof.tree-head', root, size, issuedAt: wholeSecondsIso(issuedAt) };
}

/** The digest the issuer signs, and the leaf the anchor tree commits to. */
export function treeHeadHash(head: TreeHead): string {
  return canonicalHash(head);
}

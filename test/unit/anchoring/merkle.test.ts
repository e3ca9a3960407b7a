import { createHash } from 'node:crypto';
import { leafHash, merkleProofs, merkleRoot, nodeHash, verifyMerkleProof } from '../../../src/anchoring/merkle';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const records = (n: number, salt = '') => Array.from({ length: n }, (_, i) => sha(`record-${salt}${i}`));

describe('batch Merkle tree', () => {
  it('proves every record of every batch size from 1 to 70, and nothing else', () => {
    for (let n = 1; n <= 70; n++) {
      const hashes = records(n);
      const proofs = merkleProofs(hashes);
      const root = merkleRoot(hashes);
      proofs.forEach((proof, i) => {
        expect(proof).toMatchObject({ index: i, count: n, root });
        expect(verifyMerkleProof(hashes[i]!, proof)).toBe(true);
        // Another record, another index or a changed step must not verify.
        expect(verifyMerkleProof(sha('not in the batch'), proof)).toBe(false);
        if (n > 1) {
          expect(verifyMerkleProof(hashes[i]!, { ...proof, index: (i + 1) % n })).toBe(false);
          const tampered = proof.path.map((s, k) => (k === 0 ? { ...s, hash: sha('x') } : s));
          expect(verifyMerkleProof(hashes[i]!, { ...proof, path: tampered })).toBe(false);
          const flipped = proof.path.map((s, k) => (k === 0 ? { ...s, side: s.side === 'L' ? ('R' as const) : ('L' as const) } : s));
          expect(verifyMerkleProof(hashes[i]!, { ...proof, path: flipped })).toBe(false);
        }
      });
    }
  });

  it('separates leaves from nodes and a single record from its own leaf', () => {
    const [a, b] = records(2);
    expect(merkleRoot([a!])).toBe(leafHash(a!));
    expect(merkleRoot([a!])).not.toBe(a);
    expect(merkleRoot([a!, b!])).toBe(nodeHash(leafHash(a!), leafHash(b!)));
    // An inner node presented as a record does not reproduce the root (second-preimage guard).
    const four = records(4);
    const inner = nodeHash(leafHash(four[0]!), leafHash(four[1]!));
    expect(merkleRoot([inner, nodeHash(leafHash(four[2]!), leafHash(four[3]!))])).not.toBe(merkleRoot(four));
  });

  it('promotes an odd node instead of duplicating it, so [a,b,c] and [a,b,c,c] have different roots', () => {
    const [a, b, c] = records(3);
    expect(merkleRoot([a!, b!, c!])).toBe(nodeHash(nodeHash(leafHash(a!), leafHash(b!)), leafHash(c!)));
    expect(merkleRoot([a!, b!, c!])).not.toBe(merkleRoot([a!, b!, c!, c!]));
    expect(merkleProofs([a!, b!, c!])[2]!.path).toHaveLength(1);
  });

  it('refuses malformed input', () => {
    expect(() => merkleRoot([])).toThrow(RangeError);
    expect(() => merkleRoot(['ABC'])).toThrow(RangeError);
    const proof = merkleProofs(records(5))[3]!;
    expect(verifyMerkleProof(records(5)[3]!, { ...proof, count: 4 })).toBe(false);
    expect(verifyMerkleProof(records(5)[3]!, { ...proof, path: [...proof.path, proof.path[0]!] })).toBe(false);
    expect(verifyMerkleProof('zz', proof)).toBe(false);
  });
});

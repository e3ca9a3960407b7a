import { Hash, MerklePath, Utils } from '@bsv/sdk';
import { merkleRoot, rootFromTscNodes, tscProofNodes } from '../../../ops/stand-ins/chain-simulator/merkle';
import { blockHash, meetsProofOfWork, serializeBlockHeader, targetOfBits } from '../../../src/chain/blockHeader';
import { tscProofRoot } from '../../../src/woc/tscProof';

const randomTxids = (n: number) => Array.from({ length: n }, (_, i) => Utils.toHex(Hash.sha256([i, n, Math.floor(Math.random() * 256)])));

describe('block merkle roots', () => {
  // Bitcoin block 100,000: four txs and the merkle root in its header.
  it('reproduces the merkle root of a real block', () => {
    const txids = [
      '8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87',
      'fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4',
      '6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4',
      'e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d',
    ];
    expect(merkleRoot(txids)).toBe('f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766');
  });

  it('agrees with the SDK MerklePath for blocks of 1 to 9 txs, odd levels included', () => {
    for (let n = 1; n <= 9; n++) {
      const txids = randomTxids(n);
      const leaves = txids.map((hash, offset) => ({ offset, hash, txid: true }));
      const path = new MerklePath(7, [n % 2 === 1 && n > 1 ? [...leaves, { offset: n, duplicate: true }] : leaves]);
      expect(merkleRoot(txids)).toBe(path.computeRoot(txids[0]));
    }
  });

  it('refuses an empty block', () => {
    expect(() => merkleRoot([])).toThrow(RangeError);
  });
});

describe('TSC proofs', () => {
  it('lead from every tx of blocks of 1 to 9 txs to the block root, checked by the simulator and by the WOC client', () => {
    for (let n = 1; n <= 9; n++) {
      const txids = randomTxids(n);
      const root = merkleRoot(txids);
      txids.forEach((txid, index) => {
        const nodes = tscProofNodes(txids, index);
        expect(rootFromTscNodes(txid, index, nodes)).toBe(root);
        expect(tscProofRoot(txid, { index, nodes })).toBe(root);
      });
    }
  });

  it('marks a node paired with itself with *', () => {
    const txids = randomTxids(3);
    expect(tscProofNodes(txids, 2)[0]).toBe('*');
    expect(tscProofNodes(txids, 0)[0]).toBe(txids[1]);
  });

  it('leads elsewhere when a node, the txid or the index is wrong', () => {
    const txids = randomTxids(6);
    const root = merkleRoot(txids);
    const nodes = tscProofNodes(txids, 4);
    expect(tscProofRoot(txids[4]!, { index: 4, nodes: [txids[0]!, ...nodes.slice(1)] })).not.toBe(root);
    expect(tscProofRoot(txids[3]!, { index: 4, nodes })).not.toBe(root);
    expect(tscProofRoot(txids[4]!, { index: 5, nodes })).not.toBe(root);
    expect(() => tscProofRoot(txids[4]!, { index: 64, nodes })).toThrow(RangeError);
  });

  it('refuses an index outside the block', () => {
    expect(() => tscProofNodes(randomTxids(2), 2)).toThrow(RangeError);
  });
});

describe('block headers', () => {
  // The Bitcoin genesis block header and its well-known hash.
  const genesis = {
    version: 1,
    prevHash: '0'.repeat(64),
    merkleRoot: '4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b',
    time: 1231006505,
    bits: 0x1d00ffff,
    nonce: 2083236893,
  };

  it('serialises 80 bytes and hashes to the real genesis block hash', () => {
    expect(serializeBlockHeader(genesis)).toHaveLength(80);
    expect(blockHash(genesis)).toBe('000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f');
  });

  it('checks proof of work against the target the bits encode', () => {
    expect(targetOfBits(0x1d00ffff)).toBe(0xffffn << 208n);
    expect(meetsProofOfWork(serializeBlockHeader(genesis))).toBe(true);
    expect(meetsProofOfWork(serializeBlockHeader({ ...genesis, nonce: genesis.nonce + 1 }))).toBe(false);
  });
});

import { BigNumber, ECDSA, LockingScript, OP, PrivateKey, Transaction, UnlockingScript } from '@bsv/sdk';
import { anchorPushes } from '../../src/anchoring/anchorScript';
import { canonicalHash } from '../../src/anchoring/canonical';
import { merkleProofs } from '../../src/anchoring/merkle';
import { anchorBeefHex, bumpFromTscProof } from '../../src/chain/beef';
import { blockHashOf, meetsProofOfWork, serializeBlockHeader } from '../../src/chain/blockHeader';
import { HEADERS_FILE_FORMAT } from '../../src/chain/headerSources';
import { PROOF_BUNDLE_FORMAT, PROOF_BUNDLE_FORMAT_V2, type ProofBundle } from '../../src/registration/proofBundle';
import type { WocClient, WocTx } from '../../src/woc/client';
import { merkleRoot, tscProofNodes } from '../../ops/stand-ins/chain-simulator/merkle';

/**
 * Proof bundles made without any service, for unit tests: a real issuer signature, a real anchor tx with the
 * anchor output, mined into a block of a small chain whose headers carry proof of work (regtest bits). The same
 * material gives a format 1 bundle (with a chain service stub that knows the tx) and a format 2 bundle (with a
 * headers file of the chain).
 */
export interface ProofFixture {
  v1: ProofBundle;
  v2: ProofBundle;
  issuerPubKeyHex: string;
  /** A headers file (`patchproof-headers/1`) of the whole little chain. */
  headersFile: {
    format: string;
    network: 'test';
    headers: { height: number; hash: string; prevHash: string; merkleRoot: string; time: number }[];
  };
  /** A chain service that knows the anchor tx (for format 1). */
  woc: Pick<WocClient, 'getTx'>;
}

const REGTEST_BITS = 0x207fffff;

function sign(digestHex: string, key: PrivateKey): string {
  return ECDSA.sign(new BigNumber(digestHex, 16), key, true).toDER('hex') as string;
}

function minedHeader(fields: { prevHash: string; merkleRoot: string; time: number }): Buffer {
  const header = { version: 0x20000000, bits: REGTEST_BITS, nonce: 0, ...fields };
  while (!meetsProofOfWork(serializeBlockHeader(header))) header.nonce++;
  return serializeBlockHeader(header);
}

export function proofFixture(options: { uid?: string; issuer?: PrivateKey; blockTime?: number; tip?: number } = {}): ProofFixture {
  const uid = options.uid ?? 'FIX-0001';
  const issuer = options.issuer ?? PrivateKey.fromRandom();
  const record = {
    v: 1 as const,
    kind: 'patchproof.registration',
    uid,
    product: { name: 'Field jacket', sku: 'FJ-01' },
    metadata: { notes: 'limited run' },
    initialOwner: 'mkHS9ne12qx9pS9VojpwU5xtRd4T7X7ZUt',
    registeredAt: '2026-12-01T10:00:00Z',
  };
  const recordHash = canonicalHash(record);
  // A batch of three records, ours in the middle.
  const batch = [canonicalHash({ other: 1 }), recordHash, canonicalHash({ other: 2 })];
  const anchorProof = merkleProofs(batch)[1]!;
  const tx = new Transaction(1, [], []);
  tx.addInput({ sourceTXID: '11'.repeat(32), sourceOutputIndex: 0, unlockingScript: new UnlockingScript([{ op: OP.OP_TRUE }]) });
  const pushes = anchorPushes({ root: anchorProof.root, count: batch.length });
  tx.addOutput({
    lockingScript: new LockingScript([{ op: OP.OP_FALSE }, { op: OP.OP_RETURN }, ...pushes.map((data) => ({ op: data.length, data }))]),
    satoshis: 0,
  });
  const rawHex = tx.toHex();
  const txid = tx.id('hex');

  // A chain of five blocks; the anchor tx is the third tx of block 102.
  const height = 102;
  const headers: ProofFixture['headersFile']['headers'] = [];
  let prevHash = '00'.repeat(32);
  let anchorHeader: Buffer | undefined;
  let txids: string[] = [];
  for (let h = 100; h <= (options.tip ?? 104); h++) {
    const blockTxids = h === height ? ['c0'.repeat(32), 'c1'.repeat(32), txid] : [`${h.toString(16).padStart(2, '0')}`.repeat(32)];
    const root = merkleRoot(blockTxids);
    const time = (options.blockTime ?? 1_796_000_000) + (h - height) * 600;
    const bytes = minedHeader({ prevHash, merkleRoot: root, time });
    const hash = blockHashOf(bytes);
    headers.push({ height: h, hash, prevHash, merkleRoot: root, time });
    if (h === height) {
      anchorHeader = bytes;
      txids = blockTxids;
    }
    prevHash = hash;
  }
  const index = txids.indexOf(txid);
  const beef = anchorBeefHex(rawHex, bumpFromTscProof(txid, { index, nodes: tscProofNodes(txids, index) }, height));
  const v1: ProofBundle = {
    format: PROOF_BUNDLE_FORMAT,
    network: 'test',
    uid,
    record,
    recordHash,
    issuerSignature: { signatureDerHex: sign(recordHash, issuer), pubKeyHex: issuer.toPublicKey().toString(), keyIdentifier: 'issuer' },
    anchor: { ...anchorProof, txid, vout: 0, blockHeight: height },
    transfers: [],
  };
  const v2: ProofBundle = {
    ...v1,
    format: PROOF_BUNDLE_FORMAT_V2,
    anchor: { ...v1.anchor, beef, blockHeader: anchorHeader!.toString('hex') },
  };
  const tip = headers[headers.length - 1]!.height;
  const chainTx: WocTx = {
    txid,
    size: rawHex.length / 2,
    confirmations: tip - height + 1,
    blockHeight: height,
    blockHash: headers.find((h) => h.height === height)!.hash,
    blockTime: headers.find((h) => h.height === height)!.time,
    outputs: tx.outputs.map((o, vout) => ({ vout, satoshis: o.satoshis ?? 0, scriptHex: o.lockingScript.toHex() })),
  };
  return {
    v1,
    v2,
    issuerPubKeyHex: issuer.toPublicKey().toString(),
    headersFile: { format: HEADERS_FILE_FORMAT, network: 'test', headers },
    woc: { getTx: (id: string) => Promise.resolve(id === txid ? chainTx : null) },
  };
}

/** The bundle with one byte of a hex field flipped, at `offset` bytes from the field's start (negative: from its end). */
export function flipByte(hex: string, offset: number): string {
  const bytes = Buffer.from(hex, 'hex');
  const at = offset < 0 ? bytes.length + offset : offset;
  bytes[at] = bytes[at]! ^ 0x01;
  return bytes.toString('hex');
}

import type { KeyObject } from 'node:crypto';
import { LockingScript, OP, TransactionSignature, UnlockingScript, Utils, type SignatureHashCache } from '@bsv/sdk';
import { nativePublicKey, parseDerSignature, parsePublicKeyHex, sha256, toLowS, verifySha256Signature } from './ecdsa';
import type { UnsignedTransaction } from './transactions';

/** Every input signs with SIGHASH_ALL|FORKID (0x41): BSV nodes reject an input signed with plain SIGHASH_ALL (0x01). */
export const SIGHASH_ALL_FORKID = TransactionSignature.SIGHASH_ALL | TransactionSignature.SIGHASH_FORKID;

export interface DigestSignRequest {
  keyIdentifier: string;
  digestHex: string;
  /** The 32 bytes whose sha256 is the digest, when the caller has them: the answer is then checked by OpenSSL. */
  messageHex?: string;
}

export interface DigestSignature {
  signatureDerHex: string;
  pubKeyHex: string;
}

/** Signs many digests in one call, answers in request order (the KMS client implements it). */
export interface DigestSigner {
  sign(requests: DigestSignRequest[]): Promise<DigestSignature[]>;
  /** True when the signer already verified each signature over its digest (the KMS client does): done once, not twice. */
  readonly verifiesSignatures?: boolean;
}

export interface SignedTransaction {
  txid: string;
  hex: string;
  fee: number;
  size: number;
  outputCount: number;
  /** Index of the change output, or null when there is none. */
  changeVout: number | null;
  changeSatoshis: number;
}

export class SigningError extends Error {
  constructor(reason: string) {
    super(`signing failed: ${reason}`);
    this.name = 'SigningError';
  }
}

/** The key hash a P2PKH locking script pays to; we only ever spend P2PKH outputs. */
export function p2pkhKeyHashHex(lockingScriptHex: string): string {
  const chunks = LockingScript.fromHex(lockingScriptHex).chunks;
  const isP2pkh =
    chunks.length === 5 &&
    chunks[0]!.op === OP.OP_DUP &&
    chunks[1]!.op === OP.OP_HASH160 &&
    chunks[2]!.data?.length === 20 &&
    chunks[3]!.op === OP.OP_EQUALVERIFY &&
    chunks[4]!.op === OP.OP_CHECKSIG;
  if (!isP2pkh) throw new SigningError('only P2PKH outputs can be spent');
  return Utils.toHex(chunks[2]!.data!);
}

/** What each input signs: the digest hash256(preimage), and its inner sha256(preimage), which OpenSSL verifies over. */
export interface InputDigest {
  digest: Buffer;
  /** sha256 of the BIP143-style (FORKID) preimage: the digest is sha256 of it. */
  message: Buffer;
}

/** The digest each input must sign: hash256 of its BIP143-style (FORKID) preimage. */
export function inputDigests(unsigned: UnsignedTransaction): InputDigest[] {
  const { tx, inputs } = unsigned;
  // One cache for all inputs: hashPrevouts, hashSequence and hashOutputs are the same for each of them.
  const cache: SignatureHashCache = {};
  const subscripts = new Map<string, LockingScript>();
  return inputs.map((input, inputIndex) => {
    let subscript = subscripts.get(input.lockingScriptHex);
    if (!subscript) {
      subscript = LockingScript.fromHex(input.lockingScriptHex);
      subscripts.set(input.lockingScriptHex, subscript);
    }
    const preimage = TransactionSignature.formatBytes({
      sourceTXID: input.txid,
      sourceOutputIndex: input.vout,
      sourceSatoshis: input.satoshis,
      transactionVersion: tx.version,
      otherInputs: tx.inputs.filter((_, i) => i !== inputIndex),
      outputs: tx.outputs,
      inputIndex,
      subscript,
      inputSequence: tx.inputs[inputIndex]!.sequence ?? 0xffffffff,
      lockTime: tx.lockTime,
      scope: SIGHASH_ALL_FORKID,
      cache,
    });
    const message = sha256(preimage);
    return { digest: sha256(message), message };
  });
}

/**
 * Signs every input through ONE signer call carrying all the digests, then checks each answer before it goes into
 * a script: aligned with the inputs, a valid signature over that input's digest (unless the signer vouches for
 * that), by the key whose hash the spent output locks to, normalised to low-S.
 */
export async function signTransaction(unsigned: UnsignedTransaction, signer: DigestSigner): Promise<SignedTransaction> {
  const digests = inputDigests(unsigned);
  const answers = await signer.sign(
    unsigned.inputs.map((input, i) => ({
      keyIdentifier: input.keyIdentifier,
      digestHex: digests[i]!.digest.toString('hex'),
      messageHex: digests[i]!.message.toString('hex'),
    })),
  );
  if (answers.length !== unsigned.inputs.length) {
    throw new SigningError(`signer answered ${answers.length} signatures for ${unsigned.inputs.length} inputs`);
  }

  // A sweep signs hundreds of inputs with one key: each key and locking script is parsed once.
  const keys = new Map<string, SignerKey | null>();
  const keyHashes = new Map<string, string>();
  unsigned.inputs.forEach((input, i) => {
    const answer = answers[i]!;
    const parsed = parseDerSignature(answer.signatureDerHex);
    const key = keys.get(answer.pubKeyHex) ?? signerKey(answer.pubKeyHex);
    keys.set(answer.pubKeyHex, key);
    if (!parsed || !key) throw new SigningError(`input ${i}: malformed signature or public key`);
    const signature = toLowS(parsed);
    if (!signer.verifiesSignatures && !verifySha256Signature(digests[i]!.message, signature, key.native)) {
      throw new SigningError(`input ${i}: signature does not verify`);
    }
    let lockedTo = keyHashes.get(input.lockingScriptHex);
    if (lockedTo === undefined) {
      lockedTo = p2pkhKeyHashHex(input.lockingScriptHex);
      keyHashes.set(input.lockingScriptHex, lockedTo);
    }
    if (key.hashHex !== lockedTo) {
      throw new SigningError(`input ${i}: signed by a key that does not own the spent output`);
    }
    const checksig = new TransactionSignature(signature.r, signature.s, SIGHASH_ALL_FORKID).toChecksigFormat();
    unsigned.tx.inputs[i]!.unlockingScript = new UnlockingScript([
      { op: checksig.length, data: checksig },
      { op: key.bytes.length, data: key.bytes },
    ]);
  });

  const hex = unsigned.tx.toHex();
  return {
    txid: unsigned.tx.id('hex'),
    hex,
    fee: unsigned.fee,
    size: hex.length / 2,
    outputCount: unsigned.tx.outputs.length,
    changeVout: unsigned.changeVout,
    changeSatoshis: unsigned.changeSatoshis,
  };
}

/** A signer's compressed public key: its bytes, its hash160 and its OpenSSL form. */
interface SignerKey {
  bytes: number[];
  hashHex: string;
  native: KeyObject;
}

function signerKey(pubKeyHex: string): SignerKey | null {
  const publicKey = parsePublicKeyHex(pubKeyHex, { compressedOnly: true })?.key;
  const bytes = publicKey?.encode(true) as number[] | undefined;
  const native = bytes && nativePublicKey(bytes);
  if (!publicKey || !bytes || !native) return null;
  return { bytes, hashHex: Utils.toHex(publicKey.toHash() as number[]), native };
}

import { Hash, LockingScript, OP, TransactionSignature, UnlockingScript, Utils, type SignatureHashCache } from '@bsv/sdk';
import { parseDerSignature, parsePublicKeyHex, toLowS, verifyDigestSignature } from './ecdsa';
import type { UnsignedTransaction } from './transactions';

/** Every input signs with SIGHASH_ALL|FORKID (0x41): BSV nodes reject an input signed with plain SIGHASH_ALL (0x01). */
export const SIGHASH_ALL_FORKID = TransactionSignature.SIGHASH_ALL | TransactionSignature.SIGHASH_FORKID;

export interface DigestSignRequest {
  keyIdentifier: string;
  digestHex: string;
}

export interface DigestSignature {
  signatureDerHex: string;
  pubKeyHex: string;
}

/** Signs many digests in one call, answers in request order (the KMS client implements it). */
export interface DigestSigner {
  sign(requests: DigestSignRequest[]): Promise<DigestSignature[]>;
  /**
   * True when the signer already verified each signature over its digest (the KMS client does); verification in pure
   * JavaScript costs about 5 ms a signature, so it is done once, not twice.
   */
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

/** The digest each input must sign: hash256 of its BIP143-style (FORKID) preimage. */
export function inputDigests(unsigned: UnsignedTransaction): number[][] {
  const { tx, inputs } = unsigned;
  const cache: SignatureHashCache = {};
  return inputs.map((input, inputIndex) => {
    const preimage = TransactionSignature.format({
      sourceTXID: input.txid,
      sourceOutputIndex: input.vout,
      sourceSatoshis: input.satoshis,
      transactionVersion: tx.version,
      otherInputs: tx.inputs.filter((_, i) => i !== inputIndex),
      outputs: tx.outputs,
      inputIndex,
      subscript: LockingScript.fromHex(input.lockingScriptHex),
      inputSequence: tx.inputs[inputIndex]!.sequence ?? 0xffffffff,
      lockTime: tx.lockTime,
      scope: SIGHASH_ALL_FORKID,
      cache,
    });
    return Hash.hash256(preimage);
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
    unsigned.inputs.map((input, i) => ({ keyIdentifier: input.keyIdentifier, digestHex: Utils.toHex(digests[i]!) })),
  );
  if (answers.length !== unsigned.inputs.length) {
    throw new SigningError(`signer answered ${answers.length} signatures for ${unsigned.inputs.length} inputs`);
  }

  unsigned.inputs.forEach((input, i) => {
    const answer = answers[i]!;
    const parsed = parseDerSignature(answer.signatureDerHex);
    const publicKey = parsePublicKeyHex(answer.pubKeyHex, { compressedOnly: true })?.key;
    if (!parsed || !publicKey) throw new SigningError(`input ${i}: malformed signature or public key`);
    const signature = toLowS(parsed);
    if (!signer.verifiesSignatures && !verifyDigestSignature(digests[i]!, signature, publicKey)) {
      throw new SigningError(`input ${i}: signature does not verify`);
    }
    if (Utils.toHex(publicKey.toHash() as number[]) !== p2pkhKeyHashHex(input.lockingScriptHex)) {
      throw new SigningError(`input ${i}: signed by a key that does not own the spent output`);
    }
    const checksig = new TransactionSignature(signature.r, signature.s, SIGHASH_ALL_FORKID).toChecksigFormat();
    const pubKeyBytes = publicKey.encode(true) as number[];
    unsigned.tx.inputs[i]!.unlockingScript = new UnlockingScript([
      { op: checksig.length, data: checksig },
      { op: pubKeyBytes.length, data: pubKeyBytes },
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

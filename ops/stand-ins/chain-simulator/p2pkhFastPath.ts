import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { OP, Signature, TransactionSignature, type SignatureHashCache, type Transaction } from '@bsv/sdk';
import { isLowS, nativePublicKey, sha256, verifySha256Signature } from '../../../src/chain/ecdsa';
import type { SpendableOutput } from './validation';

/**
 * The common spend checked without the script interpreter: a version-1 P2PKH spend whose unlocking script is
 * exactly <signature with SIGHASH_ALL|FORKID> <compressed public key>. Every rule the interpreter would apply to it
 * under the standard flags is checked here (push-only and minimal pushes, strict DER, low S, the sighash type, the
 * key's encoding and hash), and the signature is verified by OpenSSL over the same BIP143 digest. Only `true` is an
 * answer: anything else goes to the interpreter, which gives the node's verdict and reason.
 */

const SIGHASH_ALL_FORKID = TransactionSignature.SIGHASH_ALL | TransactionSignature.SIGHASH_FORKID;

/** What one transaction's checks share: its sighash midstate and the keys already imported. */
export interface P2pkhCheckContext {
  sighashCache: SignatureHashCache;
  keys: Map<string, KeyObject | null>;
}

export function p2pkhCheckContext(): P2pkhCheckContext {
  return { sighashCache: {}, keys: new Map() };
}

export function verifiesAsPlainP2pkh(tx: Transaction, inputIndex: number, output: SpendableOutput, context: P2pkhCheckContext): boolean {
  if (tx.version !== 1) return false;
  const keyHash = p2pkhKeyHash(output);
  const input = tx.inputs[inputIndex]!;
  const chunks = input.unlockingScript?.chunks;
  if (!keyHash || chunks?.length !== 2) return false;
  const [sigPush, keyPush] = chunks as [{ op: number; data?: number[] }, { op: number; data?: number[] }];
  // A direct push whose opcode is its length: push-only and minimal.
  const checksig = sigPush.data;
  const pubKey = keyPush.data;
  if (!checksig || sigPush.op !== checksig.length || checksig.length < 9 || checksig.length > 73) return false;
  if (!pubKey || keyPush.op !== 33 || pubKey.length !== 33) return false;
  if (checksig[checksig.length - 1] !== SIGHASH_ALL_FORKID) return false;

  const der = checksig.slice(0, -1);
  let signature: Signature;
  try {
    signature = Signature.fromDER(der);
  } catch {
    return false;
  }
  // Strict DER is the one encoding of (r, s): anything else re-encodes differently.
  if (!sameBytes(signature.toDER() as number[], der) || !isLowS(signature)) return false;
  if (!sameBytes(hash160(pubKey), keyHash)) return false;

  const keyHex = Buffer.from(pubKey).toString('hex');
  let key = context.keys.get(keyHex);
  if (key === undefined) {
    key = nativePublicKey(pubKey);
    context.keys.set(keyHex, key);
  }
  if (!key) return false;

  const preimage = TransactionSignature.formatBytes({
    sourceTXID: input.sourceTXID!,
    sourceOutputIndex: input.sourceOutputIndex,
    sourceSatoshis: output.satoshis,
    transactionVersion: tx.version,
    otherInputs: tx.inputs.filter((_, j) => j !== inputIndex),
    outputs: tx.outputs,
    inputIndex,
    subscript: output.lockingScript,
    inputSequence: input.sequence ?? 0xffffffff,
    lockTime: tx.lockTime,
    scope: SIGHASH_ALL_FORKID,
    cache: context.sighashCache,
  });
  return verifySha256Signature(sha256(preimage), signature, key);
}

/** The 20-byte hash an `OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG` script locks to, else null. */
function p2pkhKeyHash(output: SpendableOutput): number[] | null {
  const c = output.lockingScript.chunks;
  const isP2pkh =
    c.length === 5 &&
    c[0]!.op === OP.OP_DUP &&
    c[1]!.op === OP.OP_HASH160 &&
    c[2]!.op === 20 &&
    c[2]!.data?.length === 20 &&
    c[3]!.op === OP.OP_EQUALVERIFY &&
    c[4]!.op === OP.OP_CHECKSIG;
  return isP2pkh ? c[2]!.data! : null;
}

function hash160(data: number[]): Buffer {
  return createHash('ripemd160').update(sha256(data)).digest();
}

function sameBytes(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { BigNumber, Curve, ECDSA, PublicKey, Signature } from '@bsv/sdk';
import * as libsecp256k1 from 'tiny-secp256k1';

/**
 * secp256k1 ECDSA over 32-byte digests, as external signers (the KMS) produce them; shared by transaction signing,
 * the KMS client and the dev KMS. Pure, no I/O. The digest is signed as given: standard big-endian ECDSA with no
 * further hashing (PublicKey.verify would sha256 the message again).
 */

export const DIGEST_HEX = /^[0-9a-fA-F]{64}$/;

const CURVE_ORDER = new Curve().n;
const HALF_ORDER = CURVE_ORDER.ushrn(1);

export function isLowS(signature: Signature): boolean {
  return signature.s.lte(HALF_ORDER);
}

/** (r, s) and (r, n − s) both verify; BSV policy only accepts the one with s ≤ n/2. */
export function toLowS(signature: Signature): Signature {
  return isLowS(signature) ? signature : new Signature(signature.r, CURVE_ORDER.sub(signature.s));
}

export function toHighS(signature: Signature): Signature {
  return isLowS(signature) ? new Signature(signature.r, CURVE_ORDER.sub(signature.s)) : signature;
}

/**
 * Parses a SEC1 public key and returns it with its compressed hex, or null. The SDK accepts an x ≥ p by reducing
 * it, so the point must also encode back to the same bytes.
 */
export function parsePublicKeyHex(
  hex: string,
  options: { compressedOnly?: boolean } = {},
): { key: PublicKey; compressedHex: string } | null {
  const pattern = options.compressedOnly ? /^0[23][0-9a-fA-F]{64}$/ : /^(0[23][0-9a-fA-F]{64}|04[0-9a-fA-F]{128})$/;
  if (!pattern.test(hex)) return null;
  try {
    const key = PublicKey.fromString(hex);
    if (key.isInfinity() || !key.validate()) return null;
    const encoded = key.encode(!hex.startsWith('04'), 'hex') as string;
    if (encoded !== hex.toLowerCase()) return null;
    return { key, compressedHex: key.toString() };
  } catch {
    return null;
  }
}

/**
 * Verifies over the 32-byte digest itself (PublicKey.verify would hash it once more), with libsecp256k1: same answers
 * as the JavaScript `ECDSA.verify` (test/unit/chain/ecdsaAgreement.test.ts), about ten times faster.
 */
export function verifyDigestSignature(digest: readonly number[] | Uint8Array, signature: Signature, key: PublicKey): boolean {
  if (key.isInfinity()) return false;
  return verifyDigestSignatureBytes(digest, signature, Uint8Array.from(key.encode(true) as number[]));
}

/**
 * The same check for a public key given as SEC1 bytes (33 or 65), so a caller holding bytes skips the JavaScript
 * point decompression. Big-endian digest reduced mod n, r and s in [1, n − 1]; a high-S signature verifies (it is
 * normalised first, as ECDSA itself allows both), so low-S policy stays the caller's.
 */
export function verifyDigestSignatureBytes(digest: readonly number[] | Uint8Array, signature: Signature, key: Uint8Array): boolean {
  // Only 32-byte digests go to libsecp256k1; any other length keeps the JavaScript answer.
  if (digest.length !== 32) return verifyDigestSignatureJs(digest, signature, key);
  const { r, s } = signature;
  if (r.isNeg() || s.isNeg() || r.isZero() || s.isZero() || r.gte(CURVE_ORDER) || s.gte(CURVE_ORDER)) return false;
  const compact = new Uint8Array(64);
  compact.set(r.toArray('be', 32), 0);
  compact.set(s.toArray('be', 32), 32);
  try {
    return libsecp256k1.verify(Uint8Array.from(digest), key, compact, false);
  } catch {
    // Thrown for a key that is not a point on the curve: that key verifies nothing.
    return false;
  }
}

function verifyDigestSignatureJs(digest: readonly number[] | Uint8Array, signature: Signature, key: Uint8Array): boolean {
  try {
    return ECDSA.verify(new BigNumber(Array.from(digest)), signature, PublicKey.fromString(Buffer.from(key).toString('hex')));
  } catch {
    return false;
  }
}

/** True for a SEC1 public key (33 or 65 bytes) on the curve with coordinates below p; libsecp256k1's parser. */
export function isPublicKeyPoint(bytes: Uint8Array): boolean {
  return libsecp256k1.isPoint(bytes);
}

/** P + t·G as compressed bytes; null at infinity. `tweak` is a big-endian 32-byte scalar, reduced mod n first. */
export function addScalarTimesG(point: Uint8Array, tweak: Uint8Array): Uint8Array | null {
  return libsecp256k1.pointAddScalar(point, reduceModN(tweak), true);
}

/** k·P as compressed bytes; null at infinity. `scalar` is big-endian 32 bytes, reduced mod n first. */
export function multiplyPoint(point: Uint8Array, scalar: Uint8Array): Uint8Array | null {
  const k = reduceModN(scalar);
  if (k.every((b) => b === 0)) return null;
  return libsecp256k1.pointMultiply(point, k, true);
}

/** (a + b) mod n as 32 bytes; null when it is 0 (no valid private key). */
export function addScalars(a: Uint8Array, b: Uint8Array): Uint8Array | null {
  const sum = new BigNumber(Array.from(a)).add(new BigNumber(Array.from(b))).umod(CURVE_ORDER);
  return sum.isZero() ? null : Uint8Array.from(sum.toArray('be', 32));
}

/** An ECDSA signature over a 32-byte digest, RFC 6979 nonce, always low-S (libsecp256k1 normalises). */
export function signDigest(digest: Uint8Array, privateKey: Uint8Array): Signature {
  const compact = libsecp256k1.sign(digest, privateKey);
  return new Signature(new BigNumber(Array.from(compact.subarray(0, 32))), new BigNumber(Array.from(compact.subarray(32))));
}

function reduceModN(scalar: Uint8Array): Uint8Array {
  if (scalar.length !== 32) throw new Error('a scalar is 32 bytes');
  const value = new BigNumber(Array.from(scalar));
  return value.lt(CURVE_ORDER) ? scalar : Uint8Array.from(value.umod(CURVE_ORDER).toArray('be', 32));
}

/** SubjectPublicKeyInfo header of a compressed secp256k1 key: id-ecPublicKey, secp256k1, a 33-byte BIT STRING. */
const SPKI_COMPRESSED_SECP256K1 = Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex');

/** A compressed SEC1 public key as an OpenSSL key, for `verifySha256Signature`; null when it is not on the curve. */
export function nativePublicKey(compressed: Uint8Array | readonly number[]): KeyObject | null {
  if (compressed.length !== 33 || (compressed[0] !== 2 && compressed[0] !== 3)) return null;
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_COMPRESSED_SECP256K1, Buffer.from(compressed)]), format: 'der', type: 'spki' });
  } catch {
    return null;
  }
}

export function sha256(data: Uint8Array | readonly number[]): Buffer {
  return createHash('sha256').update(Buffer.from(data)).digest();
}

/**
 * Verifies a signature over the digest sha256(message) with OpenSSL, several times faster than the JavaScript
 * verify. Bitcoin digests are hash256(preimage) = sha256(sha256(preimage)), so the message is sha256(preimage).
 * Same arithmetic as `verifyDigestSignature`: a high-S signature verifies; policy on S is the caller's.
 */
export function verifySha256Signature(message: Uint8Array | readonly number[], signature: Signature, key: KeyObject): boolean {
  try {
    return verify('sha256', Buffer.from(message), key, Buffer.from(signature.toDER() as number[]));
  } catch {
    return false;
  }
}

/** Parses DER hex, or returns null when it is not a DER signature. */
export function parseDerSignature(derHex: string): Signature | null {
  if (!/^([0-9a-fA-F]{2})+$/.test(derHex)) return null;
  try {
    return Signature.fromDER(derHex, 'hex');
  } catch {
    return null;
  }
}

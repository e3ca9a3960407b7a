import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { BigNumber, Curve, ECDSA, PublicKey, Signature } from '@bsv/sdk';

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

/** Verifies over the 32-byte digest itself; PublicKey.verify would hash it once more. */
export function verifyDigestSignature(digest: number[], signature: Signature, key: PublicKey): boolean {
  try {
    return ECDSA.verify(new BigNumber(digest), signature, key);
  } catch {
    return false;
  }
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

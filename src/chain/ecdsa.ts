import { BigNumber, Curve, ECDSA, PublicKey, Signature } from '@bsv/sdk';

/**
 * secp256k1 ECDSA over 32-byte digests, as external signers (KMS) produce them. The digest is signed as given:
 * standard big-endian ECDSA, no further hashing (PublicKey.verify would sha256 the message again).
 */

const curve = new Curve();
const halfOrder = curve.n.ushrn(1);

/** BSV relays only low-S signatures for version-1 transactions; a KMS may return either twin. */
export function normaliseLowS(signature: Signature): Signature {
  return signature.s.gt(halfOrder) ? new Signature(signature.r, curve.n.sub(signature.s)) : signature;
}

export function isLowS(signature: Signature): boolean {
  return !signature.s.gt(halfOrder);
}

export function verifyDigestSignature(digest: number[], signature: Signature, publicKey: PublicKey): boolean {
  if (digest.length !== 32) return false;
  try {
    return ECDSA.verify(new BigNumber(digest), signature, publicKey);
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

export function parsePublicKey(hex: string): PublicKey | null {
  if (!/^0[23][0-9a-fA-F]{64}$/.test(hex)) return null;
  try {
    return PublicKey.fromString(hex);
  } catch {
    return null;
  }
}

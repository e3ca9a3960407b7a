import { canonicalHash } from '../anchoring/canonical';
import { addressOfPublicKey, type Network } from '../chain/addresses';
import { parseDerSignature, parsePublicKeyHex, verifyDigestSignature } from '../chain/ecdsa';

/**
 * What an owner (or a customer claiming a patch) signs. Each message names its purpose, the patch and what it
 * authorises, and carries a single-use nonce with an expiry or a fresh server challenge, so a captured signature
 * cannot be replayed (a static message, once signed, would authorise the same act for ever). The digest is sha256 of
 * the canonical JSON (docs/API.md, "Owner signatures"); the signature is standard big-endian ECDSA over it, DER-encoded.
 */
export type OwnerMessage =
  | { purpose: 'patchproof.transfer'; uid: string; headTxid: string; newOwner: string; nonce: string; expiresAt: string }
  | { purpose: 'patchproof.claim'; uid: string; address: string; nonce: string; expiresAt: string }
  | { purpose: 'patchproof.unlock'; uid: string; headTxid: string; challenge: string }
  | { purpose: 'patchproof.bind-address'; address: string; userId: string; nonce: string; expiresAt: string };

export function ownerMessageDigest(message: OwnerMessage): string {
  return canonicalHash(message);
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'bad_public_key' | 'not_the_owner' | 'bad_signature' };

/** The key belongs to `expectedAddress` on `network`, and the signature over the message's digest verifies with it. */
export function checkOwnerSignature(input: {
  message: OwnerMessage;
  pubKeyHex: string;
  signatureDerHex: string;
  expectedAddress: string;
  network: Network;
}): SignatureCheck {
  const parsed = parsePublicKeyHex(input.pubKeyHex, { compressedOnly: true });
  if (!parsed) return { ok: false, reason: 'bad_public_key' };
  if (addressOfPublicKey(parsed.key.toHash() as number[], input.network) !== input.expectedAddress)
    return { ok: false, reason: 'not_the_owner' };
  const signature = parseDerSignature(input.signatureDerHex);
  const digest = [...Buffer.from(ownerMessageDigest(input.message), 'hex')];
  if (!signature || !verifyDigestSignature(digest, signature, parsed.key)) return { ok: false, reason: 'bad_signature' };
  return { ok: true };
}

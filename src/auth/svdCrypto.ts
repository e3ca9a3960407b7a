import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Curve, PrivateKey, PublicKey, type Signature } from '@bsv/sdk';
import {
  addScalars,
  addScalarTimesG,
  isLowS,
  isPublicKeyPoint,
  multiplyPoint,
  parseDerSignature,
  signDigest,
  toHighS,
  toLowS,
  verifyDigestSignatureBytes,
} from '../chain/ecdsa';

/**
 * The SVD wire protocol (docs/AUTH.md), unchanged so existing clients work. Pure functions, no I/O:
 *   M   = 8-byte big-endian unix seconds ‖ 16 random bytes (24 bytes, 48 hex)
 *   H   = sha256(M) as a big-endian integer
 *   the client signs sha256(M) with p2c = (pmcPriv + H) mod n
 *   the server verifies against V2C = PMC + H·G, and accepts low-S signatures only.
 * Points travel as compressed SEC1 bytes and the curve arithmetic runs in libsecp256k1 (src/chain/ecdsa.ts): a login
 * costs three curve operations, each about ten times cheaper there than in JavaScript.
 */

const curve = new Curve();
const N = curve.n;

export const CHALLENGE_HEX = /^[0-9a-f]{48}$/;

export interface ParsedChallenge {
  /** Lower-case hex of the 24 bytes. */
  hex: string;
  bytes: Buffer;
  issuedAtSec: number;
  /** sha256(M) in hex: the challenge's id, the JWT's jti and the replay mark's key. */
  digestHex: string;
}

export function makeChallenge(nowSec: number, random: Buffer = randomBytes(16)): ParsedChallenge {
  const bytes = Buffer.alloc(24);
  bytes.writeBigUInt64BE(BigInt(nowSec), 0);
  random.copy(bytes, 8, 0, 16);
  return parseChallengeBytes(bytes);
}

/** Null unless `hex` is 48 hex characters; upper case is accepted and normalised, so one M has one digest. */
export function parseChallenge(hex: string): ParsedChallenge | null {
  if (!/^[0-9a-fA-F]{48}$/.test(hex)) return null;
  return parseChallengeBytes(Buffer.from(hex, 'hex'));
}

function parseChallengeBytes(bytes: Buffer): ParsedChallenge {
  const issued = bytes.readBigUInt64BE(0);
  return {
    hex: bytes.toString('hex'),
    bytes,
    // Absurd values become +∞ so every freshness check fails instead of overflowing.
    issuedAtSec: issued > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(issued),
    digestHex: createHash('sha256').update(bytes).digest('hex'),
  };
}

function digestBytes(challenge: ParsedChallenge): Buffer {
  return Buffer.from(challenge.digestHex, 'hex');
}

/** V2C = PMC + H·G (compressed): the per-challenge public key the signature must verify against; null at infinity. */
export function challengePublicKey(pmc: Uint8Array, challenge: ParsedChallenge): Uint8Array | null {
  return addScalarTimesG(pmc, digestBytes(challenge));
}

/** Client side: signs sha256(M) with (pmcPriv + H) mod n, low-S, DER hex. Used by the SDK and the canary. */
export function signChallenge(pmcPriv: PrivateKey, challenge: ParsedChallenge): string {
  const childKey = addScalars(Uint8Array.from(pmcPriv.toArray('be', 32)), digestBytes(challenge));
  if (!childKey) throw new Error('degenerate key for this challenge');
  return toLowS(signDigest(digestBytes(challenge), childKey)).toDER('hex') as string;
}

export type SignatureVerdict = 'valid' | 'malformed' | 'high_s' | 'invalid';

/** Checks a DER signature over sha256(M) against PMC + H·G; a high-S form is refused even though ECDSA accepts it. */
export function verifyChallengeSignature(
  pmc: Uint8Array,
  challenge: ParsedChallenge,
  signatureDerHex: string,
  v2c?: Uint8Array | null,
): SignatureVerdict {
  const signature: Signature | null = parseDerSignature(signatureDerHex);
  if (!signature) return 'malformed';
  if (signature.r.isZero() || signature.s.isZero() || signature.r.gte(N) || signature.s.gte(N)) return 'invalid';
  if (!isLowS(signature)) return 'high_s';
  const key = v2c === undefined ? challengePublicKey(pmc, challenge) : v2c;
  if (!key) return 'invalid';
  return verifyDigestSignatureBytes(digestBytes(challenge), signature, key) ? 'valid' : 'invalid';
}

/** The compressed bytes of a registered PMC, or null unless `pmcHex` is a compressed point on the curve. */
export function parsePmc(pmcHex: string): Uint8Array | null {
  if (!/^0[23][0-9a-fA-F]{64}$/.test(pmcHex)) return null;
  const bytes = Buffer.from(pmcHex, 'hex');
  return isPublicKeyPoint(bytes) ? bytes : null;
}

/**
 * Local (dev-only) session secret, the construction existing clients expect: p2s = (PMS + H) mod n, point = V2C·p2s,
 * S = HMAC(HMAC(salt, X(point)), "SVD-Session") with salt = sha256(PMS_pub ‖ PMC ‖ M). In KMS mode the KMS computes
 * its own secret; either way S never leaves the server.
 */
export function localSessionSecret(
  pms: PrivateKey,
  pmc: Uint8Array,
  challenge: ParsedChallenge,
  // Each is a scalar multiplication; callers that already have them pass them in.
  precomputed: { v2c?: Uint8Array; pmsPublic?: Uint8Array } = {},
): Buffer {
  const p2s = addScalars(Uint8Array.from(pms.toArray('be', 32)), digestBytes(challenge));
  if (!p2s) throw new Error('degenerate server key for this challenge');
  const v2c = precomputed.v2c ?? challengePublicKey(pmc, challenge);
  const point = v2c && multiplyPoint(v2c, p2s);
  if (!point) throw new Error('no shared point');
  const x = point.subarray(1, 33);
  const salt = createHash('sha256')
    .update(precomputed.pmsPublic ?? Uint8Array.from(pms.toPublicKey().encode(true) as number[]))
    .update(pmc)
    .update(challenge.bytes)
    .digest();
  const prk = createHmac('sha256', salt).update(x).digest();
  return createHmac('sha256', prk).update('SVD-Session').digest();
}

/** The token's proof of the session secret, bound to the user and the challenge (opaque to clients). */
export function sessionProof(secret: Buffer, userId: string, challenge: ParsedChallenge): string {
  return createHmac('sha256', secret).update('JWT-Token').update(userId).update(Buffer.from(challenge.digestHex, 'hex')).digest('hex');
}

/**
 * The canary's self-test with fixed keys: a signature by p2c verifies against V2C, its high-S twin and a tampered
 * challenge are refused, and the local ECDH gives a non-zero secret. Throws on the first failure.
 */
export function svdSelfTest(nowSec: number): void {
  const pmcPriv = PrivateKey.fromHex('5f'.repeat(32));
  const pmc = Uint8Array.from(pmcPriv.toPublicKey().encode(true) as number[]);
  const challenge = makeChallenge(nowSec, Buffer.alloc(16, 7));
  const der = signChallenge(pmcPriv, challenge);
  if (verifyChallengeSignature(pmc, challenge, der) !== 'valid') throw new Error('self-test: a valid signature did not verify');
  const highS = toHighS(parseDerSignature(der)!).toDER('hex') as string;
  if (verifyChallengeSignature(pmc, challenge, highS) !== 'high_s') throw new Error('self-test: high-S accepted');
  const other = makeChallenge(nowSec, Buffer.alloc(16, 8));
  if (verifyChallengeSignature(pmc, other, der) !== 'invalid') throw new Error('self-test: a signature verified over another challenge');
  const pms = PrivateKey.fromHex('3c'.repeat(32));
  const secret = localSessionSecret(pms, pmc, challenge);
  if (secret.length !== 32 || secret.every((b) => b === 0)) throw new Error('self-test: ECDH gave no secret');
}

export { PublicKey, PrivateKey };

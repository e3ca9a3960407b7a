import { createHash, randomBytes } from 'node:crypto';
import { BigNumber, Curve, ECDSA, PrivateKey, PublicKey, Signature } from '@bsv/sdk';
import * as libsecp256k1 from 'tiny-secp256k1';
import {
  makeChallenge,
  parsePmc,
  verifyChallengeSignature,
  type ParsedChallenge,
  type SignatureVerdict,
} from '../../../src/auth/svdCrypto';
import {
  isLowS,
  nativePublicKey,
  parseDerSignature,
  parsePublicKeyHex,
  signDigest,
  toHighS,
  verifyDigestSignature,
  verifySha256Signature,
} from '../../../src/chain/ecdsa';

/**
 * The libsecp256k1 verification must answer exactly as @bsv/sdk's JavaScript ECDSA.verify, which it replaced on the
 * login path: over 10,000 random and edge-case signatures (four runs of 2,600), each case is checked by the SDK, by
 * libsecp256k1 and, where the digest is sha256 of a known message, by OpenSSL too.
 */

const curve = new Curve();
const n = curve.n;
const CASES_PER_RUN = 2600;

interface Case {
  kind: string;
  digest: Buffer;
  /** The preimage when digest = sha256(message); lets OpenSSL give a third answer. */
  message?: Buffer;
  signature: Signature;
  key: PublicKey;
}

/** A random key pair; the public point comes from libsecp256k1 so that generating cases stays cheap. */
function keyPair(): { priv: Buffer; pub: PublicKey } {
  const priv = Buffer.from(PrivateKey.fromRandom().toArray('be', 32));
  const point = libsecp256k1.pointFromScalar(priv, false)!;
  const coordinate = (from: number) => new BigNumber(Buffer.from(point.subarray(from, from + 32)).toString('hex'), 16);
  return { priv, pub: new PublicKey(coordinate(1), coordinate(33)) };
}

function bytes32(value: BigNumber): Buffer {
  return Buffer.from(value.toArray('be', 32));
}

/** DER with an extra 0x00 before r or s: not canonical, whatever the parser makes of it. */
function zeroPaddedDer(signature: Signature, which: 'r' | 's'): string {
  const int = (v: BigNumber, pad: boolean) => {
    const body = [...(pad ? [0] : []), ...v.toArray('be')];
    if (!pad && body[0]! & 0x80) body.unshift(0);
    return [0x02, body.length, ...body];
  };
  const content = [...int(signature.r, which === 'r'), ...int(signature.s, which === 's')];
  return Buffer.from([0x30, content.length, ...content]).toString('hex');
}

/** One case of each kind in turn: valid, high-S, tampered, wrong key, garbage, out of range, re-encoded, raw digests. */
function makeCase(i: number): Case {
  const { priv, pub } = keyPair();
  const message = randomBytes(24 + (i % 40));
  const digest = createHash('sha256').update(message).digest();
  const signature = signDigest(digest, priv);
  switch (i % 12) {
    case 0:
      return { kind: 'valid', digest, message, signature, key: pub };
    case 1:
      return { kind: 'high-S', digest, message, signature: toHighS(signature), key: pub };
    case 2: {
      const tampered = Buffer.from(message);
      tampered[i % tampered.length]! ^= 1 << (i % 8);
      return { kind: 'tampered message', digest: createHash('sha256').update(tampered).digest(), message: tampered, signature, key: pub };
    }
    case 3:
      return { kind: 'wrong key', digest, message, signature, key: keyPair().pub };
    case 4:
      return {
        kind: 'random r, s',
        digest,
        message,
        signature: new Signature(new BigNumber(randomBytes(32).toString('hex'), 16), new BigNumber(randomBytes(32).toString('hex'), 16)),
        key: pub,
      };
    case 5: {
      const edges: [BigNumber, BigNumber][] = [
        [signature.r, n],
        [n, signature.s],
        [signature.r, n.addn(1)],
        [new BigNumber(0), signature.s],
        [signature.r, new BigNumber(0)],
        [n.subn(1), signature.s],
        [signature.r, n.subn(1)],
        [new BigNumber(1), new BigNumber(1)],
      ];
      const [r, s] = edges[Math.floor(i / 12) % edges.length]!;
      return { kind: 'r or s at the edge of [1, n - 1]', digest, message, signature: new Signature(r, s), key: pub };
    }
    case 6: {
      const reparsed = parseDerSignature(zeroPaddedDer(signature, i % 24 < 12 ? 'r' : 's'));
      // A parser that refuses the padding leaves nothing to verify: compare on the canonical form instead.
      return { kind: 'zero-padded DER', digest, message, signature: reparsed ?? signature, key: pub };
    }
    case 7: {
      const compact = signature.toCompact(i % 4, true) as number[];
      compact[0] = 27 + ((compact[0]! - 27 + 1 + (i % 3)) % 4); // a wrong recovery id: verification must ignore it
      return { kind: 'compact, wrong recovery id', digest, message, signature: Signature.fromCompact(compact), key: pub };
    }
    case 8: {
      // Small r and s, whose DER encodings are short: big-endian handling of leading zero bytes.
      const short = new Signature(new BigNumber(randomBytes(1 + (i % 31)).toString('hex'), 16).addn(1), signature.s);
      return { kind: 'short r', digest, message, signature: short, key: pub };
    }
    case 9: {
      // A raw digest at or above n: both reduce it mod n (ECDSA's big-endian integer), so a signature of the
      // reduced value verifies.
      const reduced = new BigNumber(randomBytes(16).toString('hex'), 16);
      const raw = bytes32(reduced.add(n));
      const sdkSigned = ECDSA.sign(reduced, PrivateKey.fromString(priv.toString('hex'), 'hex'), true);
      return { kind: 'digest ≥ n', digest: raw, signature: sdkSigned, key: pub };
    }
    case 10: {
      // Signed by the SDK (its own nonce), sometimes high-S.
      const sdkSigned = ECDSA.sign(
        new BigNumber(digest.toString('hex'), 16),
        PrivateKey.fromString(priv.toString('hex'), 'hex'),
        i % 2 === 0,
      );
      return { kind: 'SDK-signed', digest, message, signature: sdkSigned, key: pub };
    }
    default:
      return { kind: 'uncompressed key', digest, message, signature, key: PublicKey.fromString(pub.toDER('hex') as string) };
  }
}

function sdkVerify(c: Case): boolean {
  try {
    return ECDSA.verify(new BigNumber(c.digest.toString('hex'), 16), c.signature, c.key);
  } catch {
    return false;
  }
}

function runCases(offset: number): void {
  const tally = { agreed: 0, valid: 0, invalid: 0, openssl: 0 };
  for (let i = offset; i < offset + CASES_PER_RUN; i++) {
    const c = makeCase(i);
    const expected = sdkVerify(c);
    const fast = verifyDigestSignature(c.digest, c.signature, c.key);
    const detail = () =>
      `${c.kind}: digest ${c.digest.toString('hex')} r ${c.signature.r.toString(16)} s ${c.signature.s.toString(16)} key ${c.key.toString()}`;
    if (fast !== expected) throw new Error(`libsecp256k1 said ${String(fast)}, the SDK ${String(expected)} (${detail()})`);
    const native = c.message && nativePublicKey(c.key.encode(true) as number[]);
    const inRange = !c.signature.r.isZero() && !c.signature.s.isZero() && c.signature.r.lt(n) && c.signature.s.lt(n);
    if (c.message && native && inRange) {
      const openssl = verifySha256Signature(c.message, c.signature, native);
      if (openssl !== expected) throw new Error(`OpenSSL said ${String(openssl)}, the SDK ${String(expected)} (${detail()})`);
      tally.openssl++;
    }
    tally.agreed++;
    if (expected) tally.valid++;
    else tally.invalid++;
  }
  expect(tally.agreed).toBe(CASES_PER_RUN);
  // Both answers occur often, so agreement means something (valid, high-S, wrong recovery id, SDK-signed, ...).
  expect(tally.valid).toBeGreaterThan(CASES_PER_RUN / 4);
  expect(tally.invalid).toBeGreaterThan(CASES_PER_RUN / 4);
  expect(tally.openssl).toBeGreaterThan(CASES_PER_RUN / 2);
}

describe('secp256k1 verification: libsecp256k1 agrees with @bsv/sdk', () => {
  for (let run = 0; run < 4; run++) {
    it(`gives the SDK's answer for ${CASES_PER_RUN} random and edge-case signatures (run ${run + 1} of 4)`, () => {
      runCases(run * CASES_PER_RUN);
    }, 180_000);
  }

  it('accepts the same public keys as the SDK parser: random x, x ≥ p, not on the curve, uncompressed', () => {
    const p = new BigNumber('fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f', 16);
    const candidates = [
      ...Array.from({ length: 300 }, (_, i) => `0${2 + (i % 2)}${randomBytes(32).toString('hex')}`),
      `02${p.toString(16)}`,
      `03${p.addn(1).toString(16)}`,
      `02${'ff'.repeat(32)}`,
      `02${'00'.repeat(32)}`,
      `04${randomBytes(64).toString('hex')}`,
      PrivateKey.fromRandom().toPublicKey().toDER('hex') as string,
    ];
    let accepted = 0;
    for (const hex of candidates) {
      const sdk = parsePublicKeyHex(hex, { compressedOnly: true }) !== null;
      expect({ hex, accepted: parsePmc(hex) !== null }).toEqual({ hex, accepted: sdk });
      if (sdk) accepted++;
    }
    // About half of all x have a point; both outcomes must be represented.
    expect(accepted).toBeGreaterThan(50);
    expect(accepted).toBeLessThan(candidates.length - 50);
  });
});

/** The login's verdict before libsecp256k1: V2C = PMC + H·G and ECDSA.verify in JavaScript. */
function referenceVerdict(pmc: PublicKey, challenge: ParsedChallenge, derHex: string): SignatureVerdict {
  const signature = parseDerSignature(derHex);
  if (!signature) return 'malformed';
  if (signature.r.isZero() || signature.s.isZero() || signature.r.gte(n) || signature.s.gte(n)) return 'invalid';
  if (!isLowS(signature)) return 'high_s';
  const h = new BigNumber(challenge.digestHex, 16);
  const point = pmc.add(curve.g.mul(h));
  try {
    return ECDSA.verify(h, signature, new PublicKey(point.getX(), point.getY())) ? 'valid' : 'invalid';
  } catch {
    return 'invalid';
  }
}

describe('SVD login verdicts: libsecp256k1 agrees with the JavaScript implementation', () => {
  it('gives the same verdict for valid, high-S, wrong-key, tampered and malformed logins', () => {
    const seen = new Set<SignatureVerdict>();
    for (let i = 0; i < 400; i++) {
      const owner = PrivateKey.fromRandom();
      const pmc = owner.toPublicKey();
      const challenge = makeChallenge(1_700_000_000 + i);
      const h = new BigNumber(challenge.digestHex, 16);
      const child = Buffer.from(owner.add(h).umod(n).toArray('be', 32));
      const good = signDigest(Buffer.from(challenge.digestHex, 'hex'), child);
      const variants = [
        good.toDER('hex') as string,
        toHighS(good).toDER('hex') as string,
        signDigest(Buffer.from(challenge.digestHex, 'hex'), Buffer.from(owner.toArray('be', 32))).toDER('hex') as string,
        zeroPaddedDer(good, i % 2 === 0 ? 'r' : 's'),
        (good.toDER('hex') as string).slice(0, -2),
      ];
      const other = makeChallenge(1_700_000_000 + i);
      for (const der of variants) {
        for (const c of [challenge, other]) {
          const expected = referenceVerdict(pmc, c, der);
          expect({ i, der, verdict: verifyChallengeSignature(Uint8Array.from(pmc.encode(true) as number[]), c, der) }).toEqual({
            i,
            der,
            verdict: expected,
          });
          seen.add(expected);
        }
      }
    }
    expect([...seen].sort()).toEqual(['high_s', 'invalid', 'malformed', 'valid']);
  }, 180_000);
});

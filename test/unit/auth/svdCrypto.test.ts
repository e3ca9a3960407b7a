import { createHash, createHmac } from 'node:crypto';
import { BigNumber, Curve, ECDSA, PrivateKey, type PublicKey } from '@bsv/sdk';
import fc from 'fast-check';
import {
  challengePublicKey,
  localSessionSecret,
  makeChallenge,
  parseChallenge,
  signChallenge,
  svdSelfTest,
  verifyChallengeSignature,
} from '../../../src/auth/svdCrypto';
import { parseDerSignature, toHighS } from '../../../src/chain/ecdsa';

const n = new Curve().n;
const bytesOf = (key: PublicKey) => Uint8Array.from(key.encode(true) as number[]);

describe('SVD wire protocol', () => {
  it('builds M as 8-byte big-endian seconds followed by 16 random bytes, identified by sha256(M)', () => {
    const random = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const challenge = makeChallenge(1_700_000_000, random);
    expect(challenge.hex).toBe(`000000006553f100${random.toString('hex')}`);
    expect(challenge.issuedAtSec).toBe(1_700_000_000);
    expect(challenge.digestHex).toBe(createHash('sha256').update(Buffer.from(challenge.hex, 'hex')).digest('hex'));
  });

  it('parses upper-case hex to the same challenge and refuses other lengths', () => {
    const challenge = makeChallenge(1_700_000_000);
    expect(parseChallenge(challenge.hex.toUpperCase())?.digestHex).toBe(challenge.digestHex);
    expect(parseChallenge(challenge.hex.slice(2))).toBeNull();
    expect(parseChallenge(`${challenge.hex}00`)).toBeNull();
  });

  it('a signature by (pmcPriv + H) mod n verifies against PMC + H·G, for any key and challenge', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (keyBytes, random) => {
        const scalar = new BigNumber([...keyBytes]).umod(n);
        fc.pre(!scalar.isZero());
        const priv = new PrivateKey(scalar.toArray('be', 32));
        const challenge = makeChallenge(1_700_000_000, Buffer.from(random));
        expect(verifyChallengeSignature(bytesOf(priv.toPublicKey()), challenge, signChallenge(priv, challenge))).toBe('valid');
      }),
      { numRuns: 15 },
    );
  });

  it('PMC + H·G is the public key of (pmcPriv + H) mod n', () => {
    const priv = PrivateKey.fromRandom();
    const challenge = makeChallenge(1_700_000_000);
    const child = new PrivateKey(priv.add(new BigNumber(challenge.digestHex, 16)).umod(n).toArray('be', 32));
    expect(Buffer.from(challengePublicKey(bytesOf(priv.toPublicKey()), challenge)!).toString('hex')).toBe(child.toPublicKey().toString());
  });

  it('refuses the high-S twin of a valid signature, a signature by the master key itself, and garbage', () => {
    const priv = PrivateKey.fromRandom();
    const challenge = makeChallenge(1_700_000_000);
    const lowS = signChallenge(priv, challenge);
    expect(verifyChallengeSignature(bytesOf(priv.toPublicKey()), challenge, toHighS(parseDerSignature(lowS)!).toDER('hex') as string)).toBe(
      'high_s',
    );
    const byMaster = ECDSA.sign(new BigNumber(challenge.digestHex, 16), priv, true).toDER('hex') as string;
    expect(verifyChallengeSignature(bytesOf(priv.toPublicKey()), challenge, byMaster)).toBe('invalid');
    expect(verifyChallengeSignature(bytesOf(priv.toPublicKey()), challenge, 'zz')).toBe('malformed');
    expect(verifyChallengeSignature(bytesOf(priv.toPublicKey()), makeChallenge(1_700_000_001), lowS)).toBe('invalid');
  });

  it('derives the same local secret for the same key and challenge, and another for another challenge', () => {
    const pms = PrivateKey.fromRandom();
    const pmcKey = PrivateKey.fromRandom().toPublicKey();
    const pmc = bytesOf(pmcKey);
    const challenge = makeChallenge(1_700_000_000);
    const secret = localSessionSecret(pms, pmc, challenge);
    expect(secret).toHaveLength(32);
    // The construction existing clients expect, computed with the JavaScript curve arithmetic.
    const h = new BigNumber(challenge.digestHex, 16);
    const v2c = pmcKey.add(new Curve().g.mul(h));
    const x = Buffer.from(v2c.mul(pms.add(h).umod(n)).getX().toArray('be', 32));
    const salt = createHash('sha256').update(bytesOf(pms.toPublicKey())).update(pmc).update(challenge.bytes).digest();
    const prk = createHmac('sha256', salt).update(x).digest();
    expect(secret.equals(createHmac('sha256', prk).update('SVD-Session').digest())).toBe(true);
    expect(localSessionSecret(pms, pmc, challenge).equals(secret)).toBe(true);
    expect(localSessionSecret(pms, pmc, makeChallenge(1_700_000_000)).equals(secret)).toBe(false);
  });

  it('passes its own self-test', () => {
    expect(() => svdSelfTest(1_700_000_000)).not.toThrow();
  });
});

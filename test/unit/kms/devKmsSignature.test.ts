import { randomBytes } from 'node:crypto';
import { BigNumber, ECDSA, PrivateKey } from '@bsv/sdk';
import { signDigest } from '../../../ops/stand-ins/dev-kms/digestSignature';
import { verifyDigestSignature } from '../../../src/chain/ecdsa';

describe('dev KMS digest signatures', () => {
  it('are the very signatures the SDK makes (RFC 6979 nonce), verify over their digest and not over another', () => {
    for (let i = 0; i < 40; i++) {
      const key = PrivateKey.fromRandom();
      const digest = randomBytes(32);
      // Digests with leading zero bytes are read as the same 256-bit number, not a shorter one.
      if (i % 10 === 0) digest.fill(0, 0, 2);
      const signature = signDigest(digest, Uint8Array.from(key.toArray('be', 32)));
      expect(signature.toDER('hex')).toBe(ECDSA.sign(new BigNumber([...digest]), key, false).toDER('hex'));
      expect(verifyDigestSignature([...digest], signature, key.toPublicKey())).toBe(true);
      expect(verifyDigestSignature([...randomBytes(32)], signature, key.toPublicKey())).toBe(false);
    }
  });

  it('refuses a key or digest that is not 32 bytes, and a key outside [1, n − 1]', () => {
    const digest = randomBytes(32);
    expect(() => signDigest(digest, new Uint8Array(31))).toThrow(/32 bytes/);
    expect(() => signDigest(randomBytes(33), new Uint8Array(32).fill(1))).toThrow(/32 bytes/);
    expect(() => signDigest(digest, new Uint8Array(32))).toThrow(/out of range/);
    expect(() => signDigest(digest, new Uint8Array(32).fill(0xff))).toThrow(/out of range/);
  });
});

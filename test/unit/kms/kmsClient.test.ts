import { randomBytes } from 'node:crypto';
import { BigNumber, Curve, ECDSA, PrivateKey, Signature } from '@bsv/sdk';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffDelayMs, createKmsClient } from '../../../src/kms/client';
import { KMS_ERROR_KINDS, KmsError } from '../../../src/kms/errors';
import { isLowS, parsePublicKeyHex, toLowS, verifyDigestSignature } from '../../../src/chain/ecdsa';

describe('KMS client input checks', () => {
  it('rejects a digest that is not 32 bytes of hex without calling the KMS', async () => {
    const fetchImpl = jest.fn<ReturnType<typeof fetch>, Parameters<typeof fetch>>();
    const client = createKmsClient({ baseUrl: 'http://127.0.0.1:1', apiKey: 'k', timeoutMs: 100, retryAttempts: 3, fetchImpl });
    for (const digestHex of ['', 'ab', 'zz'.repeat(32), 'ab'.repeat(33)]) {
      await expect(client.sign([{ keyIdentifier: 'issuer', digestHex }])).rejects.toMatchObject({ kind: 'rejected', retryable: false });
    }
    expect(await client.sign([])).toEqual([]);
    expect(fetchImpl).not.toHaveBeenCalled();
  });
});

describe('KMS errors', () => {
  it('marks only timeout, network, server and throttling failures as retryable', () => {
    const retryable = KMS_ERROR_KINDS.filter((kind) => new KmsError(kind, 'x').retryable);
    expect(retryable).toEqual(['timeout', 'network', 'server', 'throttled']);
  });
});

describe('backoff', () => {
  it('stays within [0, min(cap, base·2^(attempt−1))] and reaches the cap', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
      expect(backoffDelayMs(attempt, () => 0)).toBe(0);
      expect(backoffDelayMs(attempt, () => 0.999999)).toBe(ceiling - 1);
    }
    expect(backoffDelayMs(8, () => 0.999999)).toBe(BACKOFF_CAP_MS - 1);
  });
});

describe('secp256k1 helpers', () => {
  it('turns a high-S signature into its low-S twin and leaves a low-S one alone', () => {
    const n = new Curve().n;
    const key = PrivateKey.fromRandom();
    const low = toLowS(key.sign('message'));
    const high = new Signature(low.r, n.sub(low.s));
    expect(isLowS(high)).toBe(false);
    expect(toLowS(high).s.eq(low.s)).toBe(true);
    expect(toLowS(low)).toBe(low);
  });

  it('accepts real public keys and refuses an x beyond the field that the SDK would silently reduce', () => {
    const pub = PrivateKey.fromRandom().toPublicKey();
    expect(parsePublicKeyHex(pub.toString())?.compressedHex).toBe(pub.toString());
    expect(parsePublicKeyHex(pub.encode(false, 'hex') as string)?.compressedHex).toBe(pub.toString());
    expect(parsePublicKeyHex(`02${'ff'.repeat(32)}`)).toBeNull();
    expect(parsePublicKeyHex(`04${'00'.repeat(64)}`)).toBeNull();
    expect(parsePublicKeyHex('not hex')).toBeNull();
    expect(parsePublicKeyHex(pub.encode(false, 'hex') as string, { compressedOnly: true })).toBeNull();
  });
});

describe('KMS client observe hook', () => {
  it('reports each call by operation (never a key identifier) with its outcome, after all retries', async () => {
    const key = PrivateKey.fromRandom().toPublicKey().toString();
    const replies = [
      new Response(JSON.stringify({ keyIdentifier: 'issuer', version: 2, pubKeyHex: key }), { status: 200 }),
      new Response('{"error":{"message":"no"}}', { status: 401 }),
      new Response('busy', { status: 503 }),
      new Response('busy', { status: 503 }),
    ];
    const fetchImpl = jest.fn<ReturnType<typeof fetch>, Parameters<typeof fetch>>(() => Promise.resolve(replies.shift()!));
    const observed: { operation: string; outcome: string; seconds: number }[] = [];
    const client = createKmsClient({
      baseUrl: 'http://kms.example',
      apiKey: 'k',
      timeoutMs: 100,
      retryAttempts: 2,
      fetchImpl,
      sleep: () => Promise.resolve(),
      observe: (call) => observed.push(call),
    });
    await expect(client.publicKey('issuer')).resolves.toMatchObject({ version: 2 });
    await expect(client.publicKey('funding')).rejects.toMatchObject({ kind: 'unauthorized' });
    await expect(client.deriveSvdSecret({ Mhex: 'ab', pmcHex: key })).rejects.toMatchObject({ kind: 'server' });
    expect(observed.map(({ operation, outcome }) => ({ operation, outcome }))).toEqual([
      { operation: 'public_key', outcome: 'success' },
      { operation: 'public_key', outcome: 'unauthorized' },
      { operation: 'svd_derive_secret', outcome: 'server' },
    ]);
    expect(fetchImpl).toHaveBeenCalledTimes(4);
  });
});

describe('digest byte order (verification reads digests big-endian, as signers sign them)', () => {
  it('verifies a signature over the digest as big-endian bytes, and refuses the same signature for the byte-reversed digest', () => {
    const key = PrivateKey.fromRandom();
    const digest = [...randomBytes(32)];
    const signature = ECDSA.sign(new BigNumber(digest), key, true);
    expect(verifyDigestSignature(digest, signature, key.toPublicKey())).toBe(true);
    expect(verifyDigestSignature([...digest].reverse(), signature, key.toPublicKey())).toBe(false);
    // A signer that byte-reversed the digest (what the old verifier needed) is refused too.
    const reversedSigner = ECDSA.sign(new BigNumber([...digest].reverse()), key, true);
    expect(verifyDigestSignature(digest, reversedSigner, key.toPublicKey())).toBe(false);
  });
});

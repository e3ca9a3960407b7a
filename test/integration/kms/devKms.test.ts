import { createECDH, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BigNumber, Curve, ECDSA, PrivateKey, PublicKey, Signature } from '@bsv/sdk';
import { createDevKms, type DevKmsOptions } from '../../../ops/stand-ins/dev-kms/server';
import type { KeyFile } from '../../../ops/stand-ins/dev-kms/keyStore';
import { createKmsClient, type KmsClient } from '../../../src/kms/client';
import { KmsError } from '../../../src/kms/errors';
import { isLowS } from '../../../src/chain/ecdsa';
import { listen, recordingFetch, rejectionOf, type Listening } from './httpServers';

const API_KEY = 'dev-kms-test-key-0123456789abcdef';

interface RunningKms extends Listening {
  keys: ReturnType<typeof createDevKms>['keys'];
}

const running: RunningKms[] = [];
let dataDir: string;

beforeEach(() => {
  dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'dev-kms-')), 'keys');
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((kms) => kms.close()));
  rmSync(path.dirname(dataDir), { recursive: true, force: true });
});

async function startKms(options: Partial<DevKmsOptions> = {}): Promise<RunningKms> {
  // The keys a stack is configured with are provisioned at start; nothing else exists until created.
  const { app, keys } = createDevKms({ dataDir, apiKey: API_KEY, keys: ['issuer', 'funding', 'svd'], ...options });
  const kms = { ...(await listen(app)), keys };
  running.push(kms);
  return kms;
}

function clientFor(baseUrl: string, overrides: { apiKey?: string; fetchImpl?: typeof fetch } = {}): KmsClient {
  return createKmsClient({ baseUrl, apiKey: API_KEY, timeoutMs: 5_000, retryAttempts: 3, sleep: () => Promise.resolve(), ...overrides });
}

/** `bearer: null` sends no Authorization header. */
function post(baseUrl: string, route: string, body: unknown, bearer: string | null = API_KEY): Promise<Response> {
  return fetch(`${baseUrl}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer !== null && { authorization: `Bearer ${bearer}` }) },
    body: JSON.stringify(body),
  });
}

function get(baseUrl: string, route: string, bearer: string | null = API_KEY): Promise<Response> {
  return fetch(`${baseUrl}${route}`, { headers: bearer !== null ? { authorization: `Bearer ${bearer}` } : {} });
}

const randomDigestHex = () => randomBytes(32).toString('hex');

function verifiesOver(digestHex: string, signature: Signature, pubKeyHex: string): boolean {
  return ECDSA.verify(new BigNumber([...Buffer.from(digestHex, 'hex')]), signature, PublicKey.fromString(pubKeyHex));
}

function readKeyFile(name: string): KeyFile {
  return JSON.parse(readFileSync(path.join(dataDir, `${name}.json`), 'utf8')) as KeyFile;
}

describe('dev KMS and KMS client over HTTP', () => {
  it('signs digests for two key ids in one request; every signature is low-S and verifies against its key', async () => {
    const kms = await startKms({ highSRate: 0.5 });
    const { calls, fetchImpl } = recordingFetch();
    const client = clientFor(kms.baseUrl, { fetchImpl });
    const requests = Array.from({ length: 8 }, (_, i) => ({
      keyIdentifier: i % 2 === 0 ? 'issuer' : 'funding',
      digestHex: randomDigestHex(),
    }));

    const signatures = await client.sign(requests);

    expect(calls.filter((c) => c === 'POST /sign')).toHaveLength(1);
    expect(signatures).toHaveLength(requests.length);
    const issuerKey = kms.keys.describe('issuer').pubKeyHex;
    const fundingKey = kms.keys.describe('funding').pubKeyHex;
    expect(issuerKey).not.toBe(fundingKey);
    signatures.forEach((result, i) => {
      const request = requests[i]!;
      const signature = Signature.fromDER(result.signatureDerHex, 'hex');
      expect(result.pubKeyHex).toBe(request.keyIdentifier === 'issuer' ? issuerKey : fundingKey);
      expect(isLowS(signature)).toBe(true);
      expect(verifiesOver(request.digestHex, signature, result.pubKeyHex)).toBe(true);
    });
    // Each signature covers its own digest: swapping two breaks verification.
    expect(verifiesOver(requests[2]!.digestHex, Signature.fromDER(signatures[0]!.signatureDerHex, 'hex'), issuerKey)).toBe(false);
  });

  it('normalises: with highSRate=1 the raw answer is high-S and the client returns the low-S twin, which verifies', async () => {
    const kms = await startKms({ highSRate: 1 });
    const digests = Array.from({ length: 5 }, randomDigestHex);
    const requests = digests.map((digestHex) => ({ keyIdentifier: 'issuer', digestHex }));

    const raw = (await (
      await post(kms.baseUrl, '/sign', { requests: digests.map((sighash) => ({ keyIdentifier: 'issuer', sighash })) })
    ).json()) as {
      signatures: { signatureHex: string; pubKeyHex: string }[];
    };
    const rawSignatures = raw.signatures.map((s) => Signature.fromDER(s.signatureHex, 'hex'));
    expect(rawSignatures.every((s) => !isLowS(s))).toBe(true);

    const normalised = await clientFor(kms.baseUrl).sign(requests);
    normalised.forEach((result, i) => {
      const signature = Signature.fromDER(result.signatureDerHex, 'hex');
      expect(isLowS(signature)).toBe(true);
      // Same deterministic signature, other half of the (s, n − s) pair.
      expect(signature.r.eq(rawSignatures[i]!.r)).toBe(true);
      expect(signature.s.add(rawSignatures[i]!.s).eq(new Curve().n)).toBe(true);
      expect(verifiesOver(digests[i]!, signature, result.pubKeyHex)).toBe(true);
    });
  });

  it('answers low-S only when highSRate=0', async () => {
    const kms = await startKms({ highSRate: 0 });
    const body = { requests: Array.from({ length: 10 }, () => ({ keyIdentifier: 'issuer', sighash: randomDigestHex() })) };
    const raw = (await (await post(kms.baseUrl, '/sign', body)).json()) as { signatures: { signatureHex: string }[] };
    expect(raw.signatures.map((s) => isLowS(Signature.fromDER(s.signatureHex, 'hex')))).toEqual(Array(10).fill(true));
  });

  it('keeps each key in a 0600 file in a 0700 directory and serves the same key after a restart', async () => {
    const first = await startKms();
    const before = (await (await get(first.baseUrl, '/keys/issuer')).json()) as { pubKeyHex: string; version: number };
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dataDir, 'issuer.json')).mode & 0o777).toBe(0o600);
    await first.close();

    const second = await startKms();
    const after = (await (await get(second.baseUrl, '/keys/issuer')).json()) as { pubKeyHex: string; version: number };
    expect(after).toEqual(before);
    const digestHex = randomDigestHex();
    const [signed] = await clientFor(second.baseUrl).sign([{ keyIdentifier: 'issuer', digestHex }]);
    expect(verifiesOver(digestHex, Signature.fromDER(signed!.signatureDerHex, 'hex'), before.pubKeyHex)).toBe(true);
  });

  it('knows only created keys: an unknown name answers 404 on every route and is not created by use; POST /keys creates it once', async () => {
    const kms = await startKms();
    const client = clientFor(kms.baseUrl);
    const unknown = await get(kms.baseUrl, '/keys/issuer-next');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: { code: 'NOT_FOUND', message: expect.stringContaining('issuer-next does not exist') } });
    expect(await rejectionOf(client.publicKey('issuer-next'))).toMatchObject({
      kind: 'rejected',
      retryable: false,
      details: { status: 404 },
    });
    const sign = await post(kms.baseUrl, '/sign', { requests: [{ keyIdentifier: 'issuer-next', sighash: randomDigestHex() }] });
    expect(sign.status).toBe(404);
    const derive = await post(kms.baseUrl, '/svd/derive-secret', {
      Mhex: '00'.repeat(24),
      pmcHex: PrivateKey.fromRandom().toPublicKey().toString(),
      keyIdentifier: 'issuer-next',
    });
    expect(derive.status).toBe(404);
    expect((await post(kms.baseUrl, '/keys/issuer-next/versions', {})).status).toBe(404);
    expect(() => statSync(path.join(dataDir, 'issuer-next.json'))).toThrow();

    const created = await post(kms.baseUrl, '/keys', { keyIdentifier: 'issuer-next' });
    expect(created.status).toBe(201);
    const info = (await created.json()) as { keyIdentifier: string; version: number; pubKeyHex: string };
    expect(info).toMatchObject({ keyIdentifier: 'issuer-next', version: 1 });
    expect(await client.publicKey('issuer-next')).toMatchObject({ keyIdentifier: 'issuer-next', version: 1, pubKeyHex: info.pubKeyHex });
    const again = await post(kms.baseUrl, '/keys', { keyIdentifier: 'issuer-next' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('CONFLICT');
    expect((await post(kms.baseUrl, '/keys', { keyIdentifier: 'issuer-next@2' })).status).toBe(400);
    expect(readKeyFile('issuer-next').versions).toHaveLength(1);
  });

  it('addresses versions as name@N, adds versions, and a cached key is replaced only after forgetPublicKey', async () => {
    const kms = await startKms();
    const client = clientFor(kms.baseUrl);
    const v1 = await client.publicKey('issuer');
    expect(v1).toMatchObject({ keyIdentifier: 'issuer', version: 1 });

    const created = await post(kms.baseUrl, '/keys/issuer/versions', {});
    expect(created.status).toBe(201);
    const v2 = (await created.json()) as { keyIdentifier: string; version: number; pubKeyHex: string };
    expect(v2).toMatchObject({ keyIdentifier: 'issuer', version: 2 });
    expect(v2.pubKeyHex).not.toBe(v1.pubKeyHex);
    expect(await (await get(kms.baseUrl, '/keys/issuer')).json()).toEqual(v2);
    expect(await (await get(kms.baseUrl, `/keys/${encodeURIComponent('issuer@1')}`)).json()).toEqual(v1);
    expect((await get(kms.baseUrl, `/keys/${encodeURIComponent('issuer@3')}`)).status).toBe(404);
    expect(readKeyFile('issuer').versions.map((v) => v.version)).toEqual([1, 2]);

    const digestHex = randomDigestHex();
    const [pinned] = await client.sign([{ keyIdentifier: 'issuer@1', digestHex }]);
    expect(pinned!.pubKeyHex).toBe(v1.pubKeyHex);
    expect(verifiesOver(digestHex, Signature.fromDER(pinned!.signatureDerHex, 'hex'), v1.pubKeyHex)).toBe(true);

    // The client still expects version 1 for `issuer`; the KMS now signs with version 2.
    const stale = await rejectionOf(client.sign([{ keyIdentifier: 'issuer', digestHex }]));
    expect(stale).toBeInstanceOf(KmsError);
    expect(stale).toMatchObject({ kind: 'wrong_key', retryable: false });

    client.forgetPublicKey('issuer');
    const [current] = await client.sign([{ keyIdentifier: 'issuer', digestHex }]);
    expect(current!.pubKeyHex).toBe(v2.pubKeyHex);
    expect(verifiesOver(digestHex, Signature.fromDER(current!.signatureDerHex, 'hex'), v2.pubKeyHex)).toBe(true);
  });

  it('derives the same SVD secret for the same inputs, equal to ECDH computed from the key file', async () => {
    const kms = await startKms();
    kms.keys.create('svd-other');
    const client = clientFor(kms.baseUrl);
    const pmcHex = PrivateKey.fromRandom().toPublicKey().toString();
    const seconds = Buffer.alloc(8);
    seconds.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000)));
    const mBytes = Buffer.concat([seconds, randomBytes(16)]);
    const Mhex = mBytes.toString('hex');

    const first = await client.deriveSvdSecret({ Mhex, pmcHex });
    const second = await client.deriveSvdSecret({ Mhex, pmcHex });
    expect(first).toEqual(second);
    expect(first.kid).toBe('svd@1');

    // Independent of @bsv/sdk: Node's ECDH returns the x-coordinate of d·PMC.
    const ecdh = createECDH('secp256k1');
    ecdh.setPrivateKey(Buffer.from(readKeyFile('svd').versions[0]!.privateKeyHex, 'hex'));
    const x = ecdh.computeSecret(Buffer.from(pmcHex, 'hex'));
    const expected = createHash('sha256')
      .update(Buffer.concat([x, mBytes]))
      .digest('hex');
    expect(first.sharedSecretHex).toBe(expected);

    const otherChallenge = await client.deriveSvdSecret({ Mhex: Buffer.concat([seconds, randomBytes(16)]).toString('hex'), pmcHex });
    expect(otherChallenge.sharedSecretHex).not.toBe(expected);
    const otherKey = await client.deriveSvdSecret({ Mhex, pmcHex, keyIdentifier: 'svd-other' });
    expect(otherKey).toMatchObject({ kid: 'svd-other@1' });
    expect(otherKey.sharedSecretHex).not.toBe(expected);

    const notOnCurve = await rejectionOf(client.deriveSvdSecret({ Mhex, pmcHex: `02${'ff'.repeat(32)}` }));
    expect(notOnCurve).toMatchObject({ kind: 'rejected', details: { status: 400, attempts: 1 } });
  });

  it('refuses a whole batch with one bad entry instead of signing the rest (a shorter answer would misalign)', async () => {
    const kms = await startKms();
    const valid = { keyIdentifier: 'issuer', sighash: randomDigestHex() };
    for (const bad of [
      { keyIdentifier: 'issuer', sighash: 'zz'.repeat(32) },
      { keyIdentifier: 'issuer@9', sighash: randomDigestHex() },
      { keyIdentifier: '', sighash: randomDigestHex() },
    ]) {
      const response = await post(kms.baseUrl, '/sign', { requests: [valid, bad, valid] });
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      const body = (await response.json()) as Record<string, unknown>;
      expect(body.signatures).toBeUndefined();
      expect(body).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
    }
    const whole = await post(kms.baseUrl, '/sign', { requests: [valid, valid] });
    expect(((await whole.json()) as { signatures: unknown[] }).signatures).toHaveLength(2);
  });

  it('answers 401 without or with a wrong bearer key, creates no key then, and 400 for a digest that is not 32-byte hex', async () => {
    const kms = await startKms();
    expect(await (await get(kms.baseUrl, '/health', null)).json()).toEqual({ status: 'ok' });

    for (const bearer of [null, 'wrong-key-0123456789abcdef']) {
      const signResponse = await post(
        kms.baseUrl,
        '/sign',
        { requests: [{ keyIdentifier: 'issuer', sighash: randomDigestHex() }] },
        bearer,
      );
      expect(signResponse.status).toBe(401);
      expect(await signResponse.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
      expect((await get(kms.baseUrl, '/keys/newcomer', bearer)).status).toBe(401);
      expect((await post(kms.baseUrl, '/keys', { keyIdentifier: 'newcomer' }, bearer)).status).toBe(401);
    }
    expect(() => statSync(path.join(dataDir, 'newcomer.json'))).toThrow();

    const wrongKeyClient = clientFor(kms.baseUrl, { apiKey: 'wrong-key-0123456789abcdef' });
    const unauthorized = await rejectionOf(wrongKeyClient.sign([{ keyIdentifier: 'issuer', digestHex: randomDigestHex() }]));
    expect(unauthorized).toMatchObject({ kind: 'unauthorized', retryable: false, details: { status: 401, attempts: 1 } });

    for (const sighash of ['zz'.repeat(32), randomDigestHex().slice(1), `${randomDigestHex()}00`]) {
      const response = await post(kms.baseUrl, '/sign', { requests: [{ keyIdentifier: 'issuer', sighash }] });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED', message: expect.any(String) } });
    }
    expect((await get(kms.baseUrl, '/no-such-route')).status).toBe(404);
  });
});

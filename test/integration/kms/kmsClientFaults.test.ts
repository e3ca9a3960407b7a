import { createHash, randomBytes } from 'node:crypto';
import { BigNumber, ECDSA, PrivateKey, Signature } from '@bsv/sdk';
import express from 'express';
import { freePort } from '../../../ops/dev-stack/services';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, createKmsClient, type KmsClient } from '../../../src/kms/client';
import { KmsError } from '../../../src/kms/errors';
import { isLowS } from '../../../src/chain/ecdsa';
import { listen, rejectionOf, type Listening } from './httpServers';

/**
 * The client against a KMS that misbehaves in one chosen way per test: a real HTTP server, so timeouts, status
 * codes and bodies travel the same path as in production.
 */

const API_KEY = 'faulty-kms-api-key-0123456789abcdef';
/** Short, for the hanging KMS; the others get room for a cold first signature in this shared event loop. */
const HANG_TIMEOUT_MS = 150;
const TIMEOUT_MS = 5_000;
const ATTEMPTS = 3;

type Fault =
  | 'none'
  | 'hang'
  | 'fail-once'
  | 'throttle-once'
  | 'always-500'
  | 'reject-400'
  | 'unauthorized'
  | 'fewer-signatures'
  | 'extra-signatures'
  | 'swapped-signatures'
  | 'other-key'
  | 'garbage-der'
  | 'other-digest'
  | 'not-json';

const issuerKey = PrivateKey.fromRandom();
const strangerKey = PrivateKey.fromRandom();

let fault: Fault;
let signAttempts: number;
let keyLookups: number;
let kms: Listening;
let sleeps: number[] = [];

function signDigest(key: PrivateKey, digestHex: string): string {
  // Not forced to low-S, as a cloud KMS would not: the client normalises.
  const signature = ECDSA.sign(new BigNumber([...Buffer.from(digestHex, 'hex')]), key, false);
  return signature.toDER('hex') as string;
}

beforeAll(async () => {
  const app = express();
  app.use(express.json());
  app.get('/keys/:keyIdentifier', (_req, res) => {
    keyLookups += 1;
    res.json({ keyIdentifier: 'issuer', version: 1, pubKeyHex: issuerKey.toPublicKey().toString() });
  });
  app.post('/sign', (req, res) => {
    signAttempts += 1;
    const digests = (req.body as { requests: { sighash: string }[] }).requests.map((r) => r.sighash);
    const honest = () => digests.map((d) => ({ signatureHex: signDigest(issuerKey, d), pubKeyHex: issuerKey.toPublicKey().toString() }));
    switch (fault) {
      case 'hang':
        return; // Never answers; the client's timeout must end the attempt.
      case 'fail-once':
        if (signAttempts === 1) {
          res.status(500).json({ error: { code: 'INTERNAL', message: 'signer restarting' } });
          return;
        }
        res.json({ signatures: honest() });
        return;
      case 'throttle-once':
        if (signAttempts === 1) {
          res
            .status(429)
            .set('Retry-After', '1')
            .json({ error: { code: 'RATE_LIMITED', message: 'slow down' } });
          return;
        }
        res.json({ signatures: honest() });
        return;
      case 'always-500':
        res.status(503).send('upstream HSM unavailable');
        return;
      case 'reject-400':
        // Echoes the credential, as careless servers do; it must not reach the error message.
        res
          .status(400)
          .json({ error: { code: 'VALIDATION_FAILED', message: `rejected request with ${req.get('authorization')} key ${API_KEY}` } });
        return;
      case 'unauthorized':
        res.status(403).json({ error: { code: 'FORBIDDEN', message: 'key not allowed' } });
        return;
      case 'fewer-signatures':
        res.json({ signatures: honest().slice(1) });
        return;
      case 'extra-signatures':
        res.json({ signatures: [...honest(), honest()[0]] });
        return;
      case 'swapped-signatures':
        // The right count, each a valid signature of the right key, but for the other request's digest.
        res.json({ signatures: honest().reverse() });
        return;
      case 'other-key':
        res.json({
          signatures: digests.map((d) => ({ signatureHex: signDigest(strangerKey, d), pubKeyHex: strangerKey.toPublicKey().toString() })),
        });
        return;
      case 'garbage-der':
        res.json({ signatures: digests.map(() => ({ signatureHex: 'deadbeef', pubKeyHex: issuerKey.toPublicKey().toString() })) });
        return;
      case 'other-digest':
        res.json({
          signatures: digests.map(() => ({
            signatureHex: signDigest(issuerKey, randomDigestHex()),
            pubKeyHex: issuerKey.toPublicKey().toString(),
          })),
        });
        return;
      case 'not-json':
        res.type('text/plain').send('OK');
        return;
      case 'none':
        res.json({ signatures: honest() });
        return;
    }
  });
  kms = await listen(app);
  // Warm the HTTP stack and the curve code once, so the 150 ms of the hang test measures the hang alone.
  fault = 'none';
  signAttempts = 0;
  keyLookups = 0;
  await client().sign(twoRequests());
});

afterAll(async () => {
  await kms.close();
});

beforeEach(() => {
  fault = 'none';
  signAttempts = 0;
  keyLookups = 0;
  sleeps = [];
});

function client(baseUrl = kms.baseUrl, timeoutMs = TIMEOUT_MS): KmsClient {
  // The test's own list: a client of an earlier test still retrying in the background must not add to it.
  const ownSleeps = sleeps;
  return createKmsClient({
    baseUrl,
    apiKey: API_KEY,
    timeoutMs,
    retryAttempts: ATTEMPTS,
    sleep: (ms) => {
      ownSleeps.push(ms);
      return Promise.resolve();
    },
  });
}

const randomDigestHex = () => randomBytes(32).toString('hex');
const twoRequests = () => [
  { keyIdentifier: 'issuer', digestHex: randomDigestHex() },
  { keyIdentifier: 'issuer', digestHex: randomDigestHex() },
];

/** As signTransaction asks: each digest is sha256 of its message, which the client verifies over natively. */
const twoRequestsWithMessages = () =>
  [randomBytes(32), randomBytes(32)].map((message) => ({
    keyIdentifier: 'issuer',
    digestHex: createHash('sha256').update(message).digest('hex'),
    messageHex: message.toString('hex'),
  }));

async function signFailure(timeoutMs = TIMEOUT_MS, requests = twoRequests()): Promise<KmsError> {
  const err = await rejectionOf(client(kms.baseUrl, timeoutMs).sign(requests));
  expect(err).toBeInstanceOf(KmsError);
  expect((err as KmsError).message).not.toContain(API_KEY);
  return err as KmsError;
}

describe('KMS client against a faulty KMS', () => {
  it('gives up with kind timeout after every attempt hung past the timeout', async () => {
    fault = 'hang';
    const started = Date.now();
    const err = await signFailure(HANG_TIMEOUT_MS);
    expect(err).toMatchObject({ kind: 'timeout', retryable: true, details: { attempts: ATTEMPTS } });
    expect(signAttempts).toBe(ATTEMPTS);
    expect(Date.now() - started).toBeGreaterThanOrEqual(ATTEMPTS * HANG_TIMEOUT_MS - 20);
    expect(sleeps).toHaveLength(ATTEMPTS - 1);
  });

  it('succeeds on the second attempt after a 500, waiting a jittered backoff in between', async () => {
    fault = 'fail-once';
    const requests = twoRequests();
    const signatures = await client().sign(requests);
    expect(signAttempts).toBe(2);
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(0);
    expect(sleeps[0]).toBeLessThanOrEqual(BACKOFF_BASE_MS);
    signatures.forEach((result, i) => {
      const signature = Signature.fromDER(result.signatureDerHex, 'hex');
      expect(isLowS(signature)).toBe(true);
      expect(ECDSA.verify(new BigNumber([...Buffer.from(requests[i]!.digestHex, 'hex')]), signature, issuerKey.toPublicKey())).toBe(true);
    });
  });

  it('retries after a 429 (throttling) and then succeeds', async () => {
    fault = 'throttle-once';
    const signatures = await client().sign(twoRequests());
    expect(signAttempts).toBe(2);
    expect(sleeps).toHaveLength(1);
    expect(signatures).toHaveLength(2);
  });

  it('reports kind server after the last of its attempts got a 5xx, with growing capped backoff', async () => {
    fault = 'always-500';
    const err = await signFailure();
    expect(err).toMatchObject({ kind: 'server', retryable: true, details: { status: 503, attempts: ATTEMPTS } });
    expect(err.message).toContain('upstream HSM unavailable');
    expect(signAttempts).toBe(ATTEMPTS);
    sleeps.forEach((ms, i) => expect(ms).toBeLessThanOrEqual(Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** i)));
  });

  it('does not retry a 400: kind rejected after exactly one attempt, without the API key in the message', async () => {
    fault = 'reject-400';
    const err = await signFailure();
    expect(err).toMatchObject({ kind: 'rejected', retryable: false, details: { status: 400, attempts: 1 } });
    expect(err.message).toContain('rejected request with');
    expect(signAttempts).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('does not retry a 403: kind unauthorized', async () => {
    fault = 'unauthorized';
    const err = await signFailure();
    expect(err).toMatchObject({ kind: 'unauthorized', retryable: false, details: { status: 403, attempts: 1 } });
    expect(signAttempts).toBe(1);
  });

  it('rejects fewer signatures than requests as misaligned', async () => {
    fault = 'fewer-signatures';
    expect(await signFailure()).toMatchObject({ kind: 'misaligned', retryable: false });
    expect(signAttempts).toBe(1);
  });

  it('rejects more signatures than requests as misaligned', async () => {
    fault = 'extra-signatures';
    expect(await signFailure()).toMatchObject({ kind: 'misaligned', retryable: false });
    expect(signAttempts).toBe(1);
  });

  it('rejects signatures answered in another order: each is checked against its own request digest', async () => {
    fault = 'swapped-signatures';
    expect(await signFailure()).toMatchObject({ kind: 'invalid_signature', retryable: false });
    expect(signAttempts).toBe(1);
  });

  it('rejects a valid signature by a different key as wrong_key', async () => {
    fault = 'other-key';
    expect(await signFailure()).toMatchObject({ kind: 'wrong_key', retryable: false });
  });

  it('rejects a signature that is not DER as malformed', async () => {
    fault = 'garbage-der';
    expect(await signFailure()).toMatchObject({ kind: 'malformed', retryable: false });
  });

  it('rejects a body that is not JSON as malformed', async () => {
    fault = 'not-json';
    expect(await signFailure()).toMatchObject({ kind: 'malformed', retryable: false, details: { attempts: 1 } });
  });

  it('rejects a signature by the right key over another digest as invalid_signature', async () => {
    fault = 'other-digest';
    expect(await signFailure()).toMatchObject({ kind: 'invalid_signature', retryable: false });
  });

  it('verifies over the message when a request carries it: honest answers pass, misplaced or foreign ones do not', async () => {
    const answers = await client().sign(twoRequestsWithMessages());
    expect(answers.every((a) => a.pubKeyHex === issuerKey.toPublicKey().toString())).toBe(true);
    fault = 'swapped-signatures';
    expect(await signFailure(TIMEOUT_MS, twoRequestsWithMessages())).toMatchObject({ kind: 'invalid_signature', retryable: false });
    fault = 'other-digest';
    expect(await signFailure(TIMEOUT_MS, twoRequestsWithMessages())).toMatchObject({ kind: 'invalid_signature', retryable: false });
  });

  it('sends nothing when a request carries a message whose sha256 is not its digest', async () => {
    const [first, second] = twoRequestsWithMessages();
    const err = await rejectionOf(client().sign([first!, { ...second!, messageHex: first!.messageHex }]));
    expect(err).toMatchObject({ kind: 'rejected', retryable: false });
    expect(signAttempts).toBe(0);
  });

  it('looks the public key up once and reuses it for later calls', async () => {
    const signer = client();
    await signer.sign(twoRequests());
    await signer.sign(twoRequests());
    expect(keyLookups).toBe(1);
    expect(signAttempts).toBe(2);
  });

  it('reports kind network, retried, when nothing listens', async () => {
    const port = await freePort();
    const err = await rejectionOf(client(`http://127.0.0.1:${port}`).publicKey('issuer'));
    expect(err).toMatchObject({ kind: 'network', retryable: true, details: { attempts: ATTEMPTS } });
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect(sleeps).toHaveLength(ATTEMPTS - 1);
  });
});

import { Hash, Utils } from '@bsv/sdk';
import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import { createApiKeyVerifier } from '../../../api/middleware/apiKey';
import { errorHandler, notFoundHandler } from '../../../api/errors';
import { DomainError } from '../../../src/errors';
import { DIGEST_HEX, parsePublicKeyHex, toHighS, toLowS } from '../../../src/chain/ecdsa';
import { createLogger, type Logger } from '../../../src/logging/logger';
import { signDigest } from './digestSignature';
import { createKeyStore, parseKeyIdentifier, type DevKmsKeys, type SigningKey } from './keyStore';
import { createTagMasterStore, type TagMasterStore } from './tagMasters';

/**
 * Dev KMS: the KMS HTTP contract (docs/ARCHITECTURE.md, "The KMS contract") over keys on local disk, for dev and
 * tests only.
 *
 *   GET  /health                      → {status:'ok'}                               (no auth)
 *   POST /keys                        {keyIdentifier: name} → 201 {keyIdentifier, version: 1, pubKeyHex} (409 if it exists)
 *   GET  /keys/{name | name@N}        → {keyIdentifier, version, pubKeyHex}         (404 NOT_FOUND for an unknown key)
 *   POST /keys/{name}/versions        → 201 {keyIdentifier, version, pubKeyHex}     (new current version of a known key)
 *   POST /keys/{name | name@N}/disable → {keyIdentifier, version, pubKeyHex, disabledAt} (signing refused after)
 *   POST /sign                        {requests:[{keyIdentifier, sighash}]} → {signatures:[{signatureHex, pubKeyHex}]}
 *   POST /svd/derive-secret           {Mhex, pmcHex, keyIdentifier?} → {sharedSecretHex, kid}
 *   GET  /tag-keys/{name}             → {keyIdentifier, version}                    (current AES master version)
 *   POST /tag-keys/{name}/versions    → 201 {keyIdentifier, version}                (rotation: new current version)
 *   POST /tag-keys/{name}/diversify   {uidHex, version?} → {keyIdentifier, version, sdmMetaReadKeyHex, sdmFileReadKeyHex}
 *   POST /tag-keys/{name}/sun-session {piccDataHex} → {candidates:[{version, uidHex, readCounter, sessionMacKeyHex}]}
 *
 * Everything but /health needs `Authorization: Bearer <apiKey>`. Errors use the API's envelope. Like a real KMS, no
 * request creates a key by using it: keys exist only once created (POST /keys, or `keys` / `--create-key` at start).
 */

export const DEFAULT_HIGH_S_RATE = 0.25;
export const DEFAULT_SVD_KEY_IDENTIFIER = 'svd';
/** Far more inputs than any transaction we build; bounds the work one request can ask for. */
const MAX_SIGN_REQUESTS = 10_000;

export interface DevKmsOptions {
  dataDir: string;
  apiKey: string;
  /** Share of signatures returned in their high-S form, so clients' normalisation is exercised. 0..1. */
  highSRate?: number;
  logger?: Logger;
  /** Source of the high-S coin flips; tests may pin it. */
  random?: () => number;
  /** Key names to create at start when missing (the keys the stack is configured with). */
  keys?: readonly string[];
}

/** One authenticated request as the dev KMS saw it: what was asked of which keys, never digests or secrets. */
export interface DevKmsRequestRecord {
  at: string;
  method: string;
  path: string;
  keyIdentifiers: string[];
  /** Signatures asked for, for /sign. */
  signatures?: number;
}

export interface DevKms {
  app: express.Express;
  keys: DevKmsKeys;
  tagMasters: TagMasterStore;
  /** Recent authenticated requests, oldest first; also served at GET /admin/requests. */
  requests: DevKmsRequestRecord[];
}

/** Kept in memory, so a long dev session cannot grow it without bound. */
const REQUEST_LOG_LIMIT = 1_000;

const keyIdentifierField = z.string().min(1).max(80);

const signBody = z.object({
  requests: z
    .array(z.object({ keyIdentifier: keyIdentifierField, sighash: z.string().regex(DIGEST_HEX, 'must be 64 hex characters (32 bytes)') }))
    .min(1)
    .max(MAX_SIGN_REQUESTS),
});

const createKeyBody = z.object({ keyIdentifier: keyIdentifierField }).strict();

const tagUidHex = z.string().regex(/^[0-9a-fA-F]{14}$/, 'a 7-byte tag UID in hex');
const diversifyBody = z.object({ uidHex: tagUidHex, version: z.number().int().min(1).optional() });
const sunSessionBody = z.object({ piccDataHex: z.string().regex(/^[0-9a-fA-F]{32}$/, 'must be 32 hex characters (16 bytes)') });

const deriveSecretBody = z.object({
  // M = 8-byte big-endian seconds ‖ 16 random bytes (the SVD wire format, docs/AUTH.md).
  Mhex: z.string().regex(/^[0-9a-fA-F]{48}$/, 'must be 48 hex characters (24 bytes)'),
  pmcHex: z.string().regex(/^0[23][0-9a-fA-F]{64}$/, 'must be a compressed secp256k1 public key (66 hex characters)'),
  keyIdentifier: keyIdentifierField.optional(),
});

function silentLogger(): Logger {
  const logger = createLogger({ service: 'dev-kms', deploySha: 'dev', level: 'error', format: 'json' });
  for (const transport of logger.transports) transport.silent = true;
  return logger;
}

export function createDevKms(options: DevKmsOptions): DevKms {
  const highSRate = options.highSRate ?? DEFAULT_HIGH_S_RATE;
  if (!(highSRate >= 0 && highSRate <= 1)) throw new Error(`dev kms: highSRate must be between 0 and 1, got ${highSRate}`);
  if (!options.apiKey) throw new Error('dev kms: an API key is required');
  const random = options.random ?? Math.random;
  const logger = options.logger ?? silentLogger();
  const keys = createKeyStore({ dataDir: options.dataDir, logger });
  for (const name of options.keys ?? []) keys.ensure(name);
  const tagMasters = createTagMasterStore({ dataDir: options.dataDir, logger });
  const verifyBearer = createApiKeyVerifier(options.apiKey);

  const requireBearer: RequestHandler = (req, res, next) => {
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1];
    if (verifyBearer(presented)) return next();
    // Route only: never the presented credential.
    logger.warn('dev kms authorization rejected', { method: req.method, path: req.path });
    res.set('WWW-Authenticate', 'Bearer');
    next(new DomainError('UNAUTHORIZED', 'A valid Authorization: Bearer token is required.'));
  };
  const requestLog: DevKmsRequestRecord[] = [];
  const record = (req: express.Request, keyIdentifiers: string[], signatures?: number) => {
    requestLog.push({
      at: new Date().toISOString(),
      method: req.method,
      path: req.path,
      keyIdentifiers,
      ...(signatures !== undefined && { signatures }),
    });
    if (requestLog.length > REQUEST_LOG_LIMIT) requestLog.splice(0, requestLog.length - REQUEST_LOG_LIMIT);
  };
  const authenticated = [requireBearer, express.json({ limit: '2mb' })];

  const app = express();
  app.disable('x-powered-by');

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Lets tests and operators see which calls were made (dry runs must make none that sign).
  app.get('/admin/requests', requireBearer, (_req, res) => {
    res.json({ requests: requestLog });
  });

  app.post('/keys', ...authenticated, (req, res) => {
    const { keyIdentifier } = createKeyBody.parse(req.body);
    record(req, [keyIdentifier]);
    res.status(201).json(keys.create(keyIdentifier));
  });

  app.get('/keys/:keyIdentifier', ...authenticated, (req, res) => {
    record(req, [String(req.params.keyIdentifier)]);
    res.json(keys.describe(String(req.params.keyIdentifier)));
  });

  app.post('/keys/:name/versions', ...authenticated, (req, res) => {
    record(req, [String(req.params.name)]);
    res.status(201).json(keys.addVersion(String(req.params.name)));
  });

  app.post('/keys/:keyIdentifier/disable', ...authenticated, (req, res) => {
    record(req, [String(req.params.keyIdentifier)]);
    res.json(keys.disable(String(req.params.keyIdentifier)));
  });

  app.post('/sign', ...authenticated, (req, res) => {
    const { requests } = signBody.parse(req.body);
    // Check every identifier before signing anything, so a bad entry cannot leave half a batch signed.
    for (const request of requests) parseKeyIdentifier(request.keyIdentifier);
    const signingKeys = new Map<string, SigningKey & { scalar: Uint8Array }>();
    const signatures = requests.map(({ keyIdentifier, sighash }) => {
      let key = signingKeys.get(keyIdentifier);
      if (!key) {
        const signingKey = keys.signingKey(keyIdentifier);
        key = { ...signingKey, scalar: Uint8Array.from(signingKey.privateKey.toArray('be', 32)) };
        signingKeys.set(keyIdentifier, key);
      }
      // The digest is signed as given (big-endian, no further hashing), like a cloud KMS in DIGEST mode.
      const signature = signDigest(Buffer.from(sighash, 'hex'), key.scalar);
      const served = random() < highSRate ? toHighS(signature) : toLowS(signature);
      return { signatureHex: served.toDER('hex') as string, pubKeyHex: key.pubKeyHex };
    });
    logger.debug('dev kms signed', { count: signatures.length, keyIdentifiers: [...signingKeys.keys()] });
    record(req, [...signingKeys.keys()], signatures.length);
    res.json({ signatures });
  });

  app.post('/svd/derive-secret', ...authenticated, (req, res) => {
    const body = deriveSecretBody.parse(req.body);
    record(req, [body.keyIdentifier ?? DEFAULT_SVD_KEY_IDENTIFIER]);
    const pmc = parsePublicKeyHex(body.pmcHex, { compressedOnly: true });
    if (!pmc) throw new DomainError('VALIDATION_FAILED', 'pmcHex is not a point on secp256k1.');
    const key = keys.signingKey(body.keyIdentifier ?? DEFAULT_SVD_KEY_IDENTIFIER);
    // sharedSecret = sha256( X(d · PMC) as 32 bytes big-endian ‖ M as its 24 bytes ), d = this key's private scalar.
    // ECDH ties the secret to the client's registered key and to this challenge; the client cannot compute it.
    const point = pmc.key.mul(key.privateKey);
    if (point.isInfinity()) throw new DomainError('VALIDATION_FAILED', 'pmcHex gives no shared point.');
    const x = point.getX().toArray('be', 32);
    const sharedSecret = Hash.sha256([...x, ...Buffer.from(body.Mhex, 'hex')]);
    res.json({ sharedSecretHex: Utils.toHex(sharedSecret), kid: `${key.keyIdentifier}@${key.version}` });
  });

  app.get('/tag-keys/:name', ...authenticated, (req, res) => {
    record(req, [String(req.params.name)]);
    res.json(tagMasters.current(String(req.params.name)));
  });

  app.post('/tag-keys/:name/versions', ...authenticated, (req, res) => {
    record(req, [String(req.params.name)]);
    res.status(201).json(tagMasters.addVersion(String(req.params.name)));
  });

  app.post('/tag-keys/:name/diversify', ...authenticated, async (req, res) => {
    const body = diversifyBody.parse(req.body);
    record(req, [String(req.params.name)]);
    res.json(await tagMasters.diversify(String(req.params.name), body.uidHex, body.version));
  });

  app.post('/tag-keys/:name/sun-session', ...authenticated, async (req, res) => {
    const body = sunSessionBody.parse(req.body);
    record(req, [String(req.params.name)]);
    res.json({ candidates: await tagMasters.sunSession(String(req.params.name), Buffer.from(body.piccDataHex, 'hex')) });
  });

  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return { app, keys, tagMasters, requests: requestLog };
}

import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import { z } from 'zod';
import { EmailAddress } from '../fields';
import { createEmailCodeService } from '../../src/auth/emailCodes';
import { emailMessageModel, USER_ID } from '../../src/auth/models';
import { svdSelfTest } from '../../src/auth/svdCrypto';
import { createSvdSecretDeriver, createSvdService, type RegistrationProof, type SvdService } from '../../src/auth/svdService';
import { bearerToken, createTokenKeyring, type TokenKeyring } from '../../src/auth/tokens';
import { chainClientsFromConfig } from '../../src/chain/clients';
import { createLiveJwtKeys, type Keyring } from '../../src/rotation/keyring';
import { DomainError } from '../../src/errors';
import type { AppDeps } from '../deps';
import { apiKeyAuthenticatorFor, isOperator } from '../middleware/apiKey';
import { requireOwnerSession, ownerOf } from '../middleware/ownerSession';
import { createRateLimiter, type RateLimiterOptions } from '../middleware/rateLimit';
import { defineRoute, type RouteSpec } from '../routing';

const UserId = z.string().regex(USER_ID, '24 lower-case hex characters').openapi({ example: '64b7f0c2a1b2c3d4e5f60718' });
const MHex = z
  .string()
  .regex(/^[0-9a-fA-F]{48}$/, '48 hex characters')
  .openapi({ description: '8-byte big-endian unix seconds ‖ 16 random bytes' });
const PmcHex = z
  .string()
  .regex(/^0[23][0-9a-fA-F]{64}$/, 'a compressed secp256k1 public key (66 hex)')
  .openapi({ description: "The owner's master public key (PMC): a point on secp256k1, compressed", format: 'secp256k1-public-key' });

const TokenSchema = z.object({ token: z.string(), expiresAt: z.number().int(), kid: z.string() }).openapi('SvdSessionToken');

/**
 * Limiters are built with the app. The OpenAPI generator declares the routes with an unconnected placeholder, where
 * building one would try to load its script into Redis; there a limiter is never run, so a pass-through stands in.
 */
function limiterFor(options: RateLimiterOptions): RequestHandler {
  if (typeof (options.redis as { call?: unknown }).call !== 'function') return (_req, _res, next) => next();
  return createRateLimiter(options);
}

const ipKey = (req: Request) => ipKeyGenerator(req.ip ?? 'unknown');

/** The body field a limiter keys on, when it is well-formed; otherwise the IP (the per-IP limiter bounds rotation). */
function bodyKey(field: string, normalise: (v: string) => string = (v) => v) {
  return (req: Request) => {
    const value = (req.body as Record<string, unknown> | undefined)?.[field];
    return typeof value === 'string' && value.length > 0 && value.length <= 320 ? `id:${normalise(value)}` : `ip:${ipKey(req)}`;
  };
}

/** SVD login, key registration, email codes and the owner-session probe (docs/AUTH.md). */
/**
 * The token keyring and SVD service of one API process, shared by the auth routes and every owner-session route.
 * With `keys`, the JWT keyring and the SVD key follow the key settings (src/rotation): a rotation reaches this
 * process without a restart.
 */
export function createOwnerSessionServices(deps: AppDeps, keys?: Keyring): { keyring: TokenKeyring; svd: SvdService } {
  const auth = deps.config.ownerAuth;
  const liveJwt = keys
    ? createLiveJwtKeys({
        keyring: keys,
        env: auth.jwt,
        jwtSecret: deps.config.auth.jwtSecret,
        // The OpenAPI generator declares the routes without a database; only a connected process refreshes.
        autoRefresh: Number(deps.mongo.readyState) > 0,
        refreshMs: deps.config.rotation.cacheMs,
        onError: (err) => deps.logger.warn('jwt key settings not refreshed', { err }),
      })
    : undefined;
  const keyring = createTokenKeyring(auth.jwt, auth.svd.clockSkewSec, Date.now, liveJwt && (() => liveJwt.current()));
  const svd = createSvdService({
    config: auth.svd,
    redis: deps.redis,
    mongo: deps.mongo,
    keyring,
    metrics: deps.metrics,
    logger: deps.logger,
    secrets: createSvdSecretDeriver(
      auth.svd,
      chainClientsFromConfig(deps.config, deps.logger, deps.metrics).kms,
      keys && (() => keys.activeKeyId('svd')),
    ),
  });
  return { keyring, svd };
}

export function ownerAuthRoutes(deps: AppDeps, services = createOwnerSessionServices(deps)): RouteSpec[] {
  const context = ownerAuthContext(deps, services);
  return [...svdRoutes(context), ...ownerSessionRoutes(context), ...emailCodeRoutes(context)];
}

/** What the owner-auth routes share: services, the API-key check and the fail-closed rate limiters. */
interface OwnerAuthContext {
  deps: AppDeps;
  auth: AppDeps['config']['ownerAuth'];
  keyring: TokenKeyring;
  svd: SvdService;
  codes: ReturnType<typeof createEmailCodeService>;
  /** True for an operator key (an admin key of the default tenant, or the bootstrap API_KEY). */
  isOperatorKey: (candidate: string) => Promise<boolean>;
  svdLimiters: RequestHandler[];
  codeLimiters: (name: string) => RequestHandler[];
  ownerSession: RequestHandler;
}

function ownerAuthContext(deps: AppDeps, services: { keyring: TokenKeyring; svd: SvdService }): OwnerAuthContext {
  const { config } = deps;
  const auth = config.ownerAuth;
  const { keyring, svd } = services;
  const codes = createEmailCodeService({
    config: auth.codes,
    mongo: deps.mongo,
    temporal: deps.temporal,
    keyring,
    metrics: deps.metrics,
    logger: deps.logger,
  });
  const authenticator = apiKeyAuthenticatorFor(deps);
  const isOperatorKey = async (candidate: string) => {
    const principal = await authenticator.authenticate(candidate);
    return principal !== null && isOperator(principal);
  };

  // Authentication routes fail closed: without Redis there is no replay protection, so they answer 503.
  const limiter = (name: string, windowMs: number, max: number, keyGenerator: (req: Request) => string) =>
    limiterFor({
      name,
      windowMs,
      max,
      keyGenerator,
      redis: deps.redis,
      logger: deps.logger,
      metrics: deps.metrics,
      failOpen: false,
      timeoutMs: config.deadlines.rateLimitMs,
    });
  const svdLimits = auth.rateLimits.svd;
  const svdLimiters = [
    limiter('svd-ip', svdLimits.windowMs, svdLimits.maxPerIp, ipKey),
    limiter('svd-user', svdLimits.windowMs, svdLimits.maxPerUser, bodyKey('userId')),
  ];
  const codeLimits = auth.rateLimits.emailCode;
  const codeLimiters = (name: string) => [
    limiter(`${name}-ip`, codeLimits.windowMs, codeLimits.maxPerIp, ipKey),
    limiter(
      `${name}-id`,
      codeLimits.windowMs,
      codeLimits.maxPerIdentifier,
      bodyKey('identifier', (v) => v.trim().toLowerCase()),
    ),
  ];
  const ownerSession = requireOwnerSession({ keyring, svd });
  return { deps, auth, keyring, svd, codes, isOperatorKey, svdLimiters, codeLimiters, ownerSession };
}

/** SVD login: the active kid, key registration, begin/complete, revocation and the canary. */
function svdRoutes({ deps, auth, keyring, svd, isOperatorKey, svdLimiters }: OwnerAuthContext): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/api/svd/kid',
      summary: 'The kid of the JWT key that signs new tokens. Cacheable for 5 minutes.',
      tags: ['Owner auth'],
      access: 'public',
      rateLimit: 'public',
      responses: { 200: { description: 'The active kid.', schema: z.object({ kid: z.string() }) } },
      handler: (_input, _req, res) => {
        res.setHeader('Cache-Control', 'public, max-age=300');
        res.json({ kid: keyring.activeKid });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/api/svd/register',
      summary:
        'Registers an owner key (PMC). Proof: an email-verified or SVD-session bearer token, or x-api-key with userId. Never replaces a key silently.',
      tags: ['Owner auth'],
      access: 'public',
      rateLimit: 'public',
      extraLimiters: svdLimiters,
      request: { body: z.object({ userId: UserId.optional(), pmcHex: PmcHex, replace: z.boolean().optional() }).strict() },
      responses: {
        201: {
          description: 'Registered, or replaced with proof.',
          schema: z.object({ userId: UserId, keyId: z.string(), replaced: z.boolean() }),
        },
        401: { description: 'No proof of the account.' },
        403: { description: 'The token belongs to another user, or the session was not proved with the current key.' },
        409: { description: 'A key is already registered and the proof does not allow replacing it.' },
      },
      handler: async ({ body }, req, res) => {
        const apiKey = req.get('x-api-key');
        let proof: RegistrationProof;
        if (apiKey !== undefined) {
          if (!(await isOperatorKey(apiKey))) throw new DomainError('UNAUTHORIZED', 'A valid x-api-key header is required.');
          if (!body.userId) throw new DomainError('VALIDATION_FAILED', 'userId is required when registering with the API key.');
          proof = { kind: 'api-key', userId: body.userId, replace: body.replace === true };
        } else {
          const token = bearerToken(req.get('authorization'));
          if (!token) {
            throw new DomainError('UNAUTHORIZED', 'Registering a key needs an email-verified token, an SVD session, or the API key.', {
              reason: 'missing_token',
            });
          }
          const owner = keyring.verify(token, ['email-verified', 'svd-session']);
          if (body.userId && body.userId !== owner.userId) throw new DomainError('FORBIDDEN', 'The token belongs to another user.');
          proof =
            owner.type === 'svd-session'
              ? { kind: 'svd-session', userId: owner.userId, svdKeyId: owner.svdKeyId }
              : { kind: 'email-token', userId: owner.userId };
        }
        const result = await svd.register(body.pmcHex, proof);
        res.status(201).json(result);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/api/svd/begin',
      summary: 'Issues a challenge M for a user. The answer is the same whether or not the user exists.',
      tags: ['Owner auth'],
      access: 'public',
      rateLimit: 'public',
      extraLimiters: svdLimiters,
      request: { body: z.object({ userId: UserId }).strict() },
      responses: {
        200: {
          description: 'A fresh challenge; several may be pending per user.',
          schema: z.object({ M: MHex, challengeId: z.string(), expiresInSec: z.number().int() }).openapi('SvdChallenge'),
        },
        503: { description: 'Redis is unavailable; SVD fails closed.' },
      },
      handler: async ({ body }, _req, res) => {
        const challenge = await svd.begin(body.userId);
        res.setHeader('Cache-Control', 'no-store');
        res.json(challenge);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/api/svd/complete',
      summary: 'Completes a login: a low-S DER signature over sha256(M) by (pmcPriv + H) mod n. Returns an SVD session token.',
      tags: ['Owner auth'],
      access: 'public',
      rateLimit: 'public',
      extraLimiters: svdLimiters,
      request: {
        body: z
          .object({
            userId: UserId,
            M: MHex,
            signatureHex: z.string().regex(/^([0-9a-fA-F]{2}){8,80}$/, 'DER signature in hex'),
            challengeId: z.string().optional(),
          })
          .strict(),
      },
      responses: {
        200: { description: 'Logged in.', schema: TokenSchema },
        400: { description: 'SVD_EXPIRED or SVD_BAD_CHALLENGE (or validation).' },
        401: { description: 'SVD_INVALID_SIGNATURE: wrong, high-S, unknown user or revoked key.' },
        409: { description: 'SVD_REPLAYED.' },
        503: { description: 'Redis or the KMS is unavailable.' },
      },
      handler: async ({ body }, _req, res) => {
        const result = await svd.complete(body.userId, body.M, body.signatureHex);
        res.setHeader('Cache-Control', 'no-store');
        res.json(result);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/api/svd/revoke',
      summary: "Revokes a user's key (admin). A revoked key cannot log in and its sessions stop working.",
      tags: ['Owner auth'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { body: z.object({ userId: UserId }).strict() },
      responses: { 200: { description: 'Whether an active key was revoked.', schema: z.object({ revoked: z.boolean() }) } },
      handler: async ({ body }, _req, res) => {
        res.json({ revoked: await svd.revoke(body.userId) });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/svd/canary',
      summary: 'SVD self-test (sign and verify with fixed keys, high-S refused, ECDH) and a snapshot of the SVD metrics.',
      tags: ['Owner auth'],
      access: 'apiKey',
      rateLimit: 'admin',
      responses: {
        200: {
          description: 'The self-test passed.',
          schema: z
            .object({
              ok: z.literal(true),
              kid: z.string(),
              secretMode: z.enum(['kms', 'local']),
              metrics: z.object({
                events: z.array(z.object({ eventType: z.string(), kid: z.string(), count: z.number() })),
                challengeAge: z.object({ count: z.number(), sumSeconds: z.number() }),
              }),
              timestamp: z.string(),
            })
            .openapi('SvdCanary'),
        },
        503: { description: 'The self-test failed.' },
      },
      handler: async (_input, _req, res) => {
        try {
          svdSelfTest(Math.floor(Date.now() / 1000));
        } catch (err) {
          deps.logger.error('svd self-test failed', { err });
          throw new DomainError('DEPENDENCY_UNAVAILABLE', 'The SVD self-test failed.');
        }
        const events = (await deps.metrics.svdEvents.get()).values.map((v) => ({
          eventType: String(v.labels.event_type),
          kid: String(v.labels.kid),
          count: v.value,
        }));
        const age = (await deps.metrics.svdChallengeAge.get()).values;
        const sumOf = (name: string) => age.filter((v) => v.metricName === name).reduce((total, v) => total + v.value, 0);
        res.setHeader('Cache-Control', 'no-store');
        res.json({
          ok: true,
          kid: keyring.activeKid,
          secretMode: auth.svd.mode,
          metrics: {
            events,
            challengeAge: {
              count: sumOf('patchproof_svd_challenge_age_seconds_count'),
              sumSeconds: sumOf('patchproof_svd_challenge_age_seconds_sum'),
            },
          },
          timestamp: new Date().toISOString(),
        });
      },
    }),
  ];
}

/** The owner session: who the bearer token belongs to. */
function ownerSessionRoutes({ ownerSession }: OwnerAuthContext): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/api/owner/session',
      summary: 'Who the SVD session belongs to. Email-verified tokens are refused, like on every owner action.',
      tags: ['Owner auth'],
      access: 'public',
      rateLimit: 'public',
      ownerSession: ownerSession,
      responses: {
        200: { description: 'The session is valid.', schema: z.object({ userId: UserId, kid: z.string(), expiresAt: z.number().int() }) },
        401: { description: 'Missing, expired, wrong-type or retired-kid token, or the key is no longer current.' },
      },
      handler: (_input, _req, res) => {
        const owner = ownerOf(res.locals);
        res.setHeader('Cache-Control', 'no-store');
        res.json({ userId: owner.userId, kid: owner.kid, expiresAt: owner.expiresAt });
      },
    }),
  ];
}

/** Email verification codes: request, submit, and the admin view of a delivery. */
function emailCodeRoutes({ deps, codes, codeLimiters }: OwnerAuthContext): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/auth/request-verification',
      summary: 'Emails a 6-digit code valid for 15 minutes. The answer is the same for every address.',
      tags: ['Owner auth'],
      access: 'public',
      rateLimit: 'public',
      extraLimiters: codeLimiters('code-request'),
      request: { body: z.object({ identifier: EmailAddress }).strict() },
      responses: {
        202: {
          description: 'A code is on its way.',
          schema: z.object({ success: z.literal(true), message: z.string(), messageId: z.string() }),
        },
      },
      handler: async ({ body }, _req, res) => {
        const { messageId } = await codes.requestCode(body.identifier);
        res.setHeader('Cache-Control', 'no-store');
        res.status(202).json({ success: true, message: 'If the address can receive mail, a code is on its way.', messageId });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/submit-verification',
      summary: 'Exchanges a code for an email-verified token (it can register a first key; it is not an SVD session).',
      tags: ['Owner auth'],
      access: 'public',
      rateLimit: 'public',
      extraLimiters: codeLimiters('code-submit'),
      request: { body: z.object({ identifier: EmailAddress, code: z.string().regex(/^\d{6}$/, '6 digits') }).strict() },
      responses: {
        200: {
          description: 'Verified.',
          schema: z.object({ success: z.literal(true), token: z.string(), userId: UserId, expiresAt: z.number().int() }),
        },
        401: { description: 'CODE_INVALID: wrong, used up, expired or legacy code (details.reason).' },
      },
      handler: async ({ body }, _req, res) => {
        const result = await codes.submitCode(body.identifier, body.code);
        res.setHeader('Cache-Control', 'no-store');
        res.json({ success: true, ...result });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/admin/emails/:messageId',
      summary: 'Delivery status of one email (never its address or body).',
      tags: ['Admin'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { params: z.object({ messageId: z.string().regex(/^[A-Za-z0-9-]{8,64}$/) }) },
      responses: {
        200: {
          description: 'The message exists.',
          schema: z
            .object({
              messageId: z.string(),
              status: z.enum(['queued', 'sent', 'failed']),
              attempts: z.number().int(),
              lastError: z.string().optional(),
              sentAt: z.string().optional(),
              failedAt: z.string().optional(),
            })
            .openapi('EmailDeliveryStatus'),
        },
        404: { description: 'No such message.' },
      },
      handler: async ({ params }, _req, res) => {
        const message = await emailMessageModel(deps.mongo).findById(params.messageId, { to: 0, code: 0 }).lean();
        if (!message) throw new DomainError('NOT_FOUND', 'No email with this id.');
        res.setHeader('Cache-Control', 'no-store');
        res.json({
          messageId: message._id,
          status: message.status,
          attempts: message.attempts,
          ...(message.lastError && { lastError: message.lastError }),
          ...(message.sentAt && { sentAt: message.sentAt.toISOString() }),
          ...(message.failedAt && { failedAt: message.failedAt.toISOString() }),
        });
      },
    }),
  ];
}

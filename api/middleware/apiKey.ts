import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { LRUCache } from 'lru-cache';
import type { Connection } from 'mongoose';
import { DomainError } from '../../src/errors';
import type { Logger } from '../../src/logging/logger';
import {
  apiKeyHashMatches,
  BOOTSTRAP_KEY_ID,
  DEFAULT_TENANT_ID,
  hasScope,
  parseApiKey,
  type ApiKeyScope,
  type ApiPrincipal,
} from '../../src/tenancy/apiKeys';
import { apiKeyModel, type ApiKeyDocument } from '../../src/tenancy/models';

/**
 * Compares keys through an HMAC with a per-process random key: both sides become 32 bytes, so the comparison is
 * constant-time and reveals nothing about the configured key's length (an early return on a length mismatch would
 * leak it through timing).
 */
export function createApiKeyVerifier(expectedKey: string): (candidate: string | undefined) => boolean {
  const hmacKey = randomBytes(32);
  const digest = (value: string) => createHmac('sha256', hmacKey).update(value, 'utf8').digest();
  const expected = digest(expectedKey);
  return (candidate) => candidate !== undefined && timingSafeEqual(digest(candidate), expected);
}

/** `Authorization: ApiKey <key>`: the form a Prometheus scrape can send (it cannot set an x-api-key header). */
const API_KEY_AUTHORIZATION = /^ApiKey\s+(\S+)$/;

/** How often one process writes a key's lastUsedAt: once a minute is enough to tell unused keys apart. */
const LAST_USED_WRITE_MS = 60_000;

export interface ApiKeyAuthenticatorOptions {
  mongo: Connection;
  logger: Logger;
  /** The bootstrap API_KEY (admin of the default tenant); empty or absent when refused or unset. */
  bootstrapKey?: string;
  /** How long a key's document is kept in this process: revocation takes effect within it (API_KEY_CACHE_MS). */
  cacheMs: number;
  cacheMaxEntries?: number;
}

/**
 * Resolves a presented key to who is calling: one lookup by `_id` (the id inside the key), kept for `cacheMs` so a
 * busy key costs one database read per interval, and a revocation is honoured within it.
 */
export class ApiKeyAuthenticator {
  private readonly kept: LRUCache<string, { doc: ApiKeyDocument | null }> | null;
  private readonly lastUsedWrites = new Map<string, number>();
  private readonly isBootstrapKey: ((candidate: string) => boolean) | null;

  constructor(private readonly options: ApiKeyAuthenticatorOptions) {
    this.kept = options.cacheMs > 0 ? new LRUCache({ max: options.cacheMaxEntries ?? 10_000, ttl: options.cacheMs }) : null;
    this.isBootstrapKey = options.bootstrapKey ? createApiKeyVerifier(options.bootstrapKey) : null;
  }

  async authenticate(presented: string | undefined): Promise<ApiPrincipal | null> {
    if (presented === undefined) return null;
    const parsed = parseApiKey(presented);
    if (!parsed) {
      if (!this.isBootstrapKey?.(presented)) return null;
      return { tenantId: DEFAULT_TENANT_ID, keyId: BOOTSTRAP_KEY_ID, scopes: ['admin'], rateLimitMax: null, registrationsPerDay: null };
    }
    const doc = await this.keyDocument(parsed.id);
    const now = new Date();
    if (!doc || doc.mode !== parsed.mode || !apiKeyHashMatches(presented, doc.secretHash)) return null;
    if (doc.revokedAt || (doc.expiresAt && doc.expiresAt <= now)) return null;
    this.noteUse(doc._id, now);
    return {
      tenantId: doc.tenantId,
      keyId: doc._id,
      scopes: doc.scopes,
      rateLimitMax: doc.rateLimitMax,
      registrationsPerDay: doc.registrationsPerDay,
    };
  }

  /** Drops a key from this process's cache (after this process revoked or rotated it). */
  forget(keyId: string): void {
    this.kept?.delete(keyId);
  }

  private async keyDocument(id: string): Promise<ApiKeyDocument | null> {
    const kept = this.kept?.get(id);
    if (kept) return kept.doc;
    const doc = await apiKeyModel(this.options.mongo).findById(id).lean();
    this.kept?.set(id, { doc });
    return doc;
  }

  /** Best effort and off the request path: a missed write only makes lastUsedAt older. */
  private noteUse(keyId: string, now: Date): void {
    const last = this.lastUsedWrites.get(keyId) ?? 0;
    if (now.getTime() - last < LAST_USED_WRITE_MS) return;
    this.lastUsedWrites.set(keyId, now.getTime());
    if (this.lastUsedWrites.size > 10_000) this.lastUsedWrites.delete(this.lastUsedWrites.keys().next().value!);
    apiKeyModel(this.options.mongo)
      .updateOne({ _id: keyId }, { $set: { lastUsedAt: now } })
      .catch((err: unknown) => this.options.logger.warn('api key last use not recorded', { keyId, err }));
  }
}

export function requireApiKey(options: { authenticator: Pick<ApiKeyAuthenticator, 'authenticate'>; logger: Logger }): RequestHandler {
  return (req, res, next) => {
    const fromAuthorization = API_KEY_AUTHORIZATION.exec(req.get('authorization') ?? '')?.[1];
    options.authenticator
      .authenticate(req.get('x-api-key') ?? fromAuthorization)
      .then((principal) => {
        if (principal) {
          res.locals.principal = principal;
          return next();
        }
        // Route and IP only: never the presented key.
        options.logger.warn('api key rejected', { method: req.method, route: req.originalUrl.split('?')[0], ip: req.ip });
        next(new DomainError('UNAUTHORIZED', 'A valid x-api-key header is required.'));
      })
      .catch(next);
  };
}

/**
 * What a route needs of its key: a scope, or `operator`, the platform's own operations (pool, rotations, issuer
 * keys, system checks): an admin key of the default tenant, never a brand's.
 */
export type RequiredScope = ApiKeyScope | 'operator';

export function requireScope(scope: RequiredScope): RequestHandler {
  return (_req, res, next) => {
    const principal = principalOf(res);
    const allowed = scope === 'operator' ? isOperator(principal) : hasScope(principal, scope);
    if (allowed) return next();
    next(new DomainError('FORBIDDEN', `This API key lacks the ${scope === 'operator' ? 'operator (default-tenant admin)' : scope} scope.`));
  };
}

/** The caller of an apiKey route, set by requireApiKey. */
export function principalOf(res: Response): ApiPrincipal {
  const principal = res.locals.principal as ApiPrincipal | undefined;
  if (!principal) throw new DomainError('UNAUTHORIZED', 'A valid x-api-key header is required.');
  return principal;
}

/** The platform's own operations are for an admin key of the default tenant. */
export function isOperator(principal: ApiPrincipal): boolean {
  return hasScope(principal, 'admin') && principal.tenantId === DEFAULT_TENANT_ID;
}

const authenticators = new WeakMap<object, ApiKeyAuthenticator>();

/** One authenticator (one cache) per app: the routes that revoke keys forget them in the cache requests use. */
export function apiKeyAuthenticatorFor(deps: {
  mongo: Connection;
  logger: Logger;
  config: { auth: { apiKey: string }; apiKeys: { cacheMs: number } };
}): ApiKeyAuthenticator {
  let authenticator = authenticators.get(deps);
  if (!authenticator) {
    authenticator = new ApiKeyAuthenticator({
      mongo: deps.mongo,
      logger: deps.logger,
      bootstrapKey: deps.config.auth.apiKey,
      cacheMs: deps.config.apiKeys.cacheMs,
    });
    authenticators.set(deps, authenticator);
  }
  return authenticator;
}

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { DomainError } from '../../src/errors';
import type { Logger } from '../../src/logging/logger';

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

export function requireApiKey(options: { apiKey: string; logger: Logger }): RequestHandler {
  const verify = createApiKeyVerifier(options.apiKey);
  return (req, _res, next) => {
    const fromAuthorization = API_KEY_AUTHORIZATION.exec(req.get('authorization') ?? '')?.[1];
    if (verify(req.get('x-api-key') ?? fromAuthorization)) return next();
    // Route and IP only: never the presented key.
    options.logger.warn('api key rejected', { method: req.method, route: req.originalUrl.split('?')[0], ip: req.ip });
    next(new DomainError('UNAUTHORIZED', 'A valid x-api-key header is required.'));
  };
}

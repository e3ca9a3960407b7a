import type { RequestHandler } from 'express';
import cors from 'cors';
import { DomainError } from '../../src/errors';

/** Rejects any key that MongoDB would read as an operator (`$gt`, `$where`, …) or a path (`a.b`) in body or query. */
export const rejectMongoOperators: RequestHandler = (req, _res, next) => {
  const offending = findOperatorKey(req.body) ?? findOperatorKey(req.query);
  if (offending)
    return next(new DomainError('NOSQL_OPERATOR_REJECTED', `Field names may not start with "$" or contain "." (${offending}).`));
  next();
};

/** The first key in `value` that MongoDB would read as an operator or a path, if any. */
export function findOperatorKey(value: unknown, depth = 0): string | undefined {
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    if (key.startsWith('$') || key.includes('.') || key.includes('[$')) return key;
    const nested = findOperatorKey(inner, depth + 1);
    if (nested) return nested;
  }
  return undefined;
}

/** A request that carries a body must say it is JSON; anything else is 415 rather than a confusing 400. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody =
    req.get('content-length') !== undefined ? Number(req.get('content-length')) > 0 : req.get('transfer-encoding') !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    return next(new DomainError('UNSUPPORTED_MEDIA_TYPE', 'Send the request body as application/json.'));
  }
  next();
};

/**
 * CORS with an allowlist. Requests without an Origin (servers, curl) pass. Outside production an empty
 * allowlist allows any origin, for local front-end work; in production only listed origins are allowed.
 */
export function corsAllowlist(options: { allowedOrigins: string[]; isProduction: boolean }): RequestHandler {
  const allowed = new Set(options.allowedOrigins);
  return cors({
    origin: (origin, callback) => {
      if (!origin || allowed.has(origin) || (!options.isProduction && allowed.size === 0)) return callback(null, true);
      callback(new DomainError('CORS_ORIGIN_DENIED', 'This origin is not allowed.'));
    },
    allowedHeaders: ['Content-Type', 'Authorization', 'X-Api-Key', 'X-Request-Id'],
    exposedHeaders: ['X-Request-Id', 'Retry-After'],
    maxAge: 600,
  });
}

import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { RateLimitConfig } from '../../src/config';
import type { Logger } from '../../src/logging/logger';
import type { Metrics } from '../../src/metrics';
import { DomainError } from '../../src/errors';
import { withDeadline } from '../../src/resilience/deadline';
import { errorEnvelope, httpStatusFor } from '../errors';

export interface RateLimiterOptions extends RateLimitConfig {
  /** Distinguishes the counters of each limiter in Redis. */
  name: string;
  redis: Redis;
  logger: Logger;
  /**
   * What to do when Redis cannot be reached: public reads stay up (fail open); authentication routes set this to
   * false and answer 503 DEPENDENCY_UNAVAILABLE instead (fail closed).
   */
  failOpen: boolean;
  /** How long a counter update may take; past it the limiter fails open or closed as above (RATE_LIMIT_TIMEOUT_MS). */
  timeoutMs: number;
  /** Counter key for a request; the default is the client IP. Owner-auth routes also key by user or identifier. */
  keyGenerator?: (req: Request) => string;
  /** The limit of a request's counter when it differs per caller (a key's own limit); `max` otherwise. */
  limitFor?: (req: Request) => number;
  /** Records each store call's time as step `rate_limit` (test/bench/svd-login.ts prints it). */
  metrics?: Pick<Metrics, 'requestStepDuration'>;
}

function isNoScriptReply(err: unknown): boolean {
  return err instanceof Error && /^NOSCRIPT(?:\s|$)/.test(err.message);
}

/** A Redis-backed limiter keyed by client IP, answering 429 in the standard envelope with Retry-After. */
export function createRateLimiter(options: RateLimiterOptions): RequestHandler {
  return rateLimit({
    windowMs: options.windowMs,
    limit: options.limitFor ?? options.max,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    passOnStoreError: options.failOpen,
    ...(options.keyGenerator && { keyGenerator: options.keyGenerator }),
    store: new RedisStore({
      prefix: `rl:${options.name}:`,
      sendCommand: async (command: string, ...args: string[]) => {
        const started = performance.now();
        try {
          return (await withDeadline(options.redis.call(command, ...args), options.timeoutMs, 'rate-limit store')) as RedisReply;
        } catch (err) {
          // The store loads its scripts once, at start, and keeps a failed load for good. A script's SHA is known
          // without Redis: answer it, and EVALSHA's NOSCRIPT makes the store load the script again once Redis answers.
          if (command.toUpperCase() === 'SCRIPT' && args[0]?.toUpperCase() === 'LOAD' && args[1] !== undefined) {
            return createHash('sha1').update(args[1]).digest('hex');
          }
          // A restarted Redis has forgotten the scripts: its NOSCRIPT reply goes to the store as it is, which loads
          // the script again and retries, instead of failing every request until the API restarts.
          if (isNoScriptReply(err)) throw err;
          throw new DomainError('DEPENDENCY_UNAVAILABLE', 'Rate limiting is unavailable.', undefined, { cause: err });
        } finally {
          options.metrics?.requestStepDuration.observe({ step: 'rate_limit' }, (performance.now() - started) / 1000);
        }
      },
    }),
    // Each limiter's own property: a route's limiters run side by side (allLimits) on one request.
    requestPropertyName: `rateLimit:${options.name}`,
    handler: (req, res, _next, limiterOptions) => {
      // Another limiter of the route already refused this request.
      if (res.headersSent) return;
      const info = (req as unknown as Record<string, { resetTime?: Date } | undefined>)[`rateLimit:${options.name}`];
      const resetTime = info?.resetTime;
      const retryAfterSeconds = resetTime
        ? Math.max(1, Math.ceil((resetTime.getTime() - Date.now()) / 1000))
        : Math.ceil(limiterOptions.windowMs / 1000);
      res.setHeader('Retry-After', String(retryAfterSeconds));
      options.logger.info('rate limited', { limiter: options.name, method: req.method, route: req.originalUrl.split('?')[0], ip: req.ip });
      res.status(httpStatusFor('RATE_LIMITED')).json(
        errorEnvelope('RATE_LIMITED', 'Too many requests; retry later.', res.locals.requestId as string | undefined, {
          retryAfterSeconds,
        }),
      );
    },
  });
}

/**
 * A route's limiters run side by side instead of one after another: their Redis calls are in flight together, so a
 * request waits one round trip for all of them instead of one per limiter. Every limiter counts the
 * request, even one that another limiter refuses. The first refusal answers 429; a store failure of a fail-closed
 * limiter answers 503 (passed to the error handler); otherwise the request goes on once all have counted it. Replies
 * come back in the order the commands left, so the standard headers are the last limiter's, as in sequence.
 */
export function allLimits(limiters: RequestHandler[]): RequestHandler {
  if (limiters.length === 1) return limiters[0]!;
  return (req, res, next) => {
    const counted = limiters.map(async (limiter) => {
      let failure: unknown;
      await limiter(req, res, (err?: unknown) => {
        failure = err;
      });
      return failure;
    });
    Promise.all(counted).then((failures) => {
      if (res.headersSent) return;
      const failure = failures.find((f) => f !== undefined);
      next(failure);
    }, next);
  };
}

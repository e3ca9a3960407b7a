import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { runWithLogContext, type Logger } from '../../src/logging/logger';
import type { Metrics } from '../../src/metrics';

// Accept a caller's id only if it is short and plain, so it cannot inject text into logs or headers.
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives every request an id (the caller's X-Request-Id when valid, else a new UUID), echoes it, runs the rest of
 * the request inside that log context, and records the access log line and the duration histogram on finish.
 */
export function requestContext(options: { logger: Logger; metrics: Metrics; accessLog: boolean }): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    const requestId = incoming && VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.locals.arrivedAt = started;

    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // The route template (not the raw path) keeps label cardinality bounded.
      const routePath = (req.route as { path?: unknown } | undefined)?.path;
      const route = typeof routePath === 'string' ? `${req.baseUrl}${routePath}` : 'unmatched';
      options.metrics.httpRequestDuration.observe({ method: req.method, route, status_code: String(res.statusCode) }, seconds);
      if (options.accessLog) {
        runWithLogContext({ requestId }, () =>
          options.logger.info('http request', {
            method: req.method,
            route,
            status: res.statusCode,
            durationMs: Math.round(seconds * 1000),
            ip: req.ip,
          }),
        );
      }
    });

    runWithLogContext({ requestId }, () => next());
  };
}

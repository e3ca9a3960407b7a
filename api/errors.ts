import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { DomainError, type ErrorCode } from '../src/errors';
import type { Logger } from '../src/logging/logger';
import { CircuitOpenError } from '../src/resilience/circuitBreaker';
import { isDependencyUnavailable } from '../src/resilience/unavailable';

/** The only mapping from error codes to HTTP statuses. */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case 'VALIDATION_FAILED':
    case 'MALFORMED_JSON':
    case 'NOSQL_OPERATOR_REJECTED':
      return 400;
    case 'UNAUTHORIZED':
      return 401;
    case 'FORBIDDEN':
    case 'CORS_ORIGIN_DENIED':
    case 'APPROVER_IS_STARTER':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'METHOD_NOT_ALLOWED':
      return 405;
    case 'CONFLICT':
    case 'OPERATION_IN_PROGRESS':
      return 409;
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 415;
    case 'RATE_LIMITED':
      return 429;
    case 'DEPENDENCY_UNAVAILABLE':
    case 'QUEUE_FULL':
      return 503;
    case 'INTERNAL':
      return 500;
    case 'SVD_EXPIRED':
    case 'SVD_BAD_CHALLENGE':
      return 400;
    case 'SVD_INVALID_SIGNATURE':
    case 'CODE_INVALID':
      return 401;
    case 'SVD_REPLAYED':
      return 409;
    case 'SIGNATURE_INVALID':
      return 403;
    case 'SIGNATURE_EXPIRED':
      return 400;
    case 'NONCE_REPLAYED':
      return 409;
  }
}

export interface ErrorEnvelope {
  error: { code: ErrorCode; message: string; details?: unknown; requestId?: string };
}

export function errorEnvelope(code: ErrorCode, message: string, requestId: string | undefined, details?: unknown): ErrorEnvelope {
  return { error: { code, message, ...(details !== undefined && { details }), ...(requestId && { requestId }) } };
}

/** body-parser's error types for problems with what the client sent. */
const BODY_PARSER_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  'entity.parse.failed': { code: 'MALFORMED_JSON', message: 'The request body is not valid JSON.' },
  'entity.too.large': { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large.' },
  'encoding.unsupported': { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'The request body encoding is not supported.' },
  'charset.unsupported': { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'The request body charset is not supported.' },
  'request.aborted': { code: 'MALFORMED_JSON', message: 'The request body was not received in full.' },
  'request.size.invalid': { code: 'MALFORMED_JSON', message: 'The request body length does not match Content-Length.' },
};

export function zodDetails(error: ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
    return { path: issue.path.join('.') || '(root)', message: `${issue.message}${keys}` };
  });
}

/** What a 503 DEPENDENCY_UNAVAILABLE tells the client to wait, unless the app passes its circuits' open time. */
const DEPENDENCY_RETRY_AFTER_SECONDS = 5;

/**
 * Converts anything thrown into the envelope; client mistakes are always 4xx and server faults never leak detail.
 * Every 503 carries Retry-After: a dependency that is away or stalled is told to come back after about the time
 * its circuit stays open.
 */
export function errorHandler(logger: Logger, options: { dependencyRetryAfterSeconds?: number } = {}): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const requestId = res.locals.requestId as string | undefined;
    if (res.headersSent) {
      // The route's deadline answered first (503); the handler's own end, success or failure, comes after it.
      // Idempotency keys make that end safe to learn by retrying, so it is a note, not a failure.
      logger.info('request ended after its deadline answer', { method: req.method, path: req.path, late: errorName(err) });
      return;
    }
    let code: ErrorCode;
    let message: string;
    let details: unknown;

    if (err instanceof DomainError) {
      ({ code, message, details } = err);
    } else if (isDependencyUnavailable(err)) {
      code = 'DEPENDENCY_UNAVAILABLE';
      message = 'A service this request needs is unavailable; retry later.';
    } else if (err instanceof ZodError) {
      code = 'VALIDATION_FAILED';
      message = 'The request is not valid.';
      details = zodDetails(err);
    } else if (isBodyParserError(err) && BODY_PARSER_ERRORS[err.type]) {
      ({ code, message } = BODY_PARSER_ERRORS[err.type]!);
    } else if (isHttpError(err) && err.status >= 400 && err.status < 500) {
      code = err.status === 413 ? 'PAYLOAD_TOO_LARGE' : err.status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'VALIDATION_FAILED';
      message = 'The request could not be processed.';
    } else {
      code = 'INTERNAL';
      message = 'Internal server error.';
    }

    const status = httpStatusFor(code);
    // A full registration queue is the system working as designed under load, not a fault to page on.
    if (err instanceof CircuitOpenError) {
      // Refused without a call: one short line per request while a dependency's circuit is open, no stack.
      logger.warn('request refused: circuit open', { method: req.method, path: req.path, errorCode: code, dependency: err.dependency });
    } else if (code === 'QUEUE_FULL') {
      logger.warn('request refused: registration queue full', { method: req.method, path: req.path, errorCode: code });
    } else if (status >= 500) {
      logger.error('request failed', { method: req.method, path: req.path, errorCode: code, err });
    } else {
      logger.info('request rejected', { method: req.method, path: req.path, errorCode: code, status });
    }
    const retryAfter = (details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
    else if (code === 'DEPENDENCY_UNAVAILABLE') {
      res.setHeader('Retry-After', String(options.dependencyRetryAfterSeconds ?? DEPENDENCY_RETRY_AFTER_SECONDS));
    }
    res.status(status).json(errorEnvelope(code, message, requestId, details));
  };
}

function errorName(err: unknown): string {
  return err instanceof Error
    ? (err as { code?: unknown }).code === undefined
      ? err.name
      : `${err.name} ${String((err as { code?: unknown }).code)}`
    : typeof err;
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new DomainError('NOT_FOUND', `No route for ${req.method} ${req.path}.`));
};

function isBodyParserError(err: unknown): err is { type: string; status: number } {
  return typeof err === 'object' && err !== null && typeof (err as { type?: unknown }).type === 'string';
}

function isHttpError(err: unknown): err is { status: number } {
  return typeof err === 'object' && err !== null && typeof (err as { status?: unknown }).status === 'number';
}

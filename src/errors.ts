/**
 * Stable error codes shared by the API, the CLI and activities. A code never changes meaning once released;
 * docs/ERRORS.md lists each with its HTTP status (mapped in api/errors.ts, the only place that does so).
 */
export const ERROR_CODES = [
  'VALIDATION_FAILED',
  'MALFORMED_JSON',
  'NOSQL_OPERATOR_REJECTED',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'CORS_ORIGIN_DENIED',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'CONFLICT',
  'OPERATION_IN_PROGRESS',
  // Key rotation: the credential that started a rotation tried to approve it (docs/ROTATION.md).
  'APPROVER_IS_STARTER',
  'PAYLOAD_TOO_LARGE',
  'RATE_LIMITED',
  'DEPENDENCY_UNAVAILABLE',
  'QUEUE_FULL',
  'INTERNAL',
  // Owner authentication (docs/AUTH.md).
  'SVD_EXPIRED',
  'SVD_BAD_CHALLENGE',
  'SVD_REPLAYED',
  'SVD_INVALID_SIGNATURE',
  'CODE_INVALID',
  // Owner-signed messages: transfers, claims, unlocks (docs/API.md, "Owner signatures").
  'SIGNATURE_INVALID',
  'SIGNATURE_EXPIRED',
  'NONCE_REPLAYED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** An error that carries a stable code and a message safe to show to the caller. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DomainError';
  }
}

/**
 * Failures of the KMS client. `kind` is stable so activities can map it to an ApplicationFailure type, and
 * `retryable` says whether trying the same call again can help (only transport trouble and KMS-side faults).
 */
export const KMS_ERROR_KINDS = [
  'timeout',
  'network',
  'server',
  /** 429: the KMS is throttling; retried with backoff like a fault on its side. */
  'throttled',
  'rejected',
  'unauthorized',
  'malformed',
  'misaligned',
  'wrong_key',
  'invalid_signature',
] as const;

export type KmsErrorKind = (typeof KMS_ERROR_KINDS)[number];

const RETRYABLE_KINDS: ReadonlySet<KmsErrorKind> = new Set(['timeout', 'network', 'server', 'throttled']);

export class KmsError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly kind: KmsErrorKind,
    message: string,
    readonly details: { status?: number; attempts?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KmsError';
    this.retryable = RETRYABLE_KINDS.has(kind);
  }
}

export function isKmsError(err: unknown): err is KmsError {
  return err instanceof KmsError;
}

/**
 * Failures of a WhatsOnChain call. `retryable` is what an activity's retry policy should look at: transport
 * failures, 5xx and 429 pass with time; a 4xx or an unreadable body will not. Messages carry the method, path and
 * status only, never a header, so the API key cannot leak through an error or a log line built from one.
 */
export type WocErrorKind = 'timeout' | 'network' | 'rate_limited' | 'server_error' | 'bad_request' | 'bad_response';

const RETRYABLE: Record<WocErrorKind, boolean> = {
  timeout: true,
  network: true,
  rate_limited: true,
  server_error: true,
  bad_request: false,
  bad_response: false,
};

export class WocError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly kind: WocErrorKind,
    message: string,
    readonly details: { method: string; path: string; status?: number; attempts: number; retryAfterMs?: number },
  ) {
    super(message);
    this.name = 'WocError';
    this.retryable = RETRYABLE[kind];
  }
}

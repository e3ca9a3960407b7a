import { redactString } from '../logging/redact';

/**
 * Retry helpers shared by the HTTP clients at the system's borders (KMS, WhatsOnChain).
 * Full jitter: a random wait up to the exponential cap, so clients that failed together spread out.
 * `attempt` counts from 0 (the wait after the first failure).
 */
export function fullJitterDelay(attempt: number, random: () => number, baseMs = 200, capMs = 5_000): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from `nowMs`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** Text from the wire made safe for an error message: redacted, and without a literal copy of the caller's secret. */
export function scrubWireText(text: string, secret?: string): string {
  const redacted = redactString(text);
  return secret ? redacted.split(secret).join('[REDACTED]') : redacted;
}

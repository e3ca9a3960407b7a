/** Backoff for WOC retries: full jitter (a random wait up to the exponential cap) so that clients spread out. */
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

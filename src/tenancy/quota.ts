import type { Redis } from 'ioredis';
import { DomainError } from '../errors';
import type { ApiPrincipal } from './apiKeys';

const DAY_MS = 86_400_000;

/**
 * A key's registrations per UTC day, counted in Redis (one counter per key and day, shared by every API process).
 * Taken before a new registration or batch starts; past the quota the request answers 429 with Retry-After until
 * the next UTC midnight, and nothing is counted for it. While Redis does not answer, the quota is not enforced (like
 * the request rate limits, it fails open): a registration is idempotent and bounded by those limits, and refusing
 * every brand's registrations for a Redis stall would cost more than a few uncounted ones.
 */
export function registrationQuota(
  redis: Pick<Redis, 'incrby' | 'decrby' | 'pexpire'>,
  principal: Pick<ApiPrincipal, 'keyId' | 'registrationsPerDay'>,
  defaultPerDay: number,
  now: () => number = Date.now,
): { take(count: number): Promise<void> } {
  return {
    async take(count: number) {
      if (count <= 0) return;
      const limit = principal.registrationsPerDay ?? defaultPerDay;
      const at = now();
      const day = new Date(at).toISOString().slice(0, 10);
      const counter = `quota:registrations:${principal.keyId}:${day}`;
      let used: number;
      try {
        used = await redis.incrby(counter, count);
        if (used === count) await redis.pexpire(counter, 2 * DAY_MS);
        if (used <= limit) return;
        await redis.decrby(counter, count);
      } catch {
        // Redis's own circuit and its alert report the outage; the quota waits for it to end.
        return;
      }
      const retryAfterSeconds = Math.max(1, Math.ceil((DAY_MS - (at % DAY_MS)) / 1000));
      throw new DomainError('RATE_LIMITED', `This API key's quota of ${limit} registrations per day is used up.`, {
        retryAfterSeconds,
        quota: 'registrations_per_day',
        limit,
        remaining: Math.max(0, limit - (used - count)),
      });
    },
  };
}

import type { Connection } from 'mongoose';
import { DomainError } from '../errors';
import { patchModel } from './models';

/** How long a count of waiting registrations is reused: one count per second, however many requests arrive. */
const COUNT_TTL_MS = 1_000;
/** What a refused client is told to wait: about one anchoring round. */
export const QUEUE_RETRY_AFTER_SECONDS = 30;

/**
 * The bound on registrations waiting to be anchored (pending records, single or bulk). Under it, a registration
 * waits for pool funds like any other; over it, the API refuses new work with 503 and Retry-After instead of
 * letting the backlog grow without limit.
 */
export function registrationQueue(mongo: Connection, limit: number) {
  let cached: { count: number; at: number } | undefined;
  async function waiting(): Promise<number> {
    if (!cached || Date.now() - cached.at > COUNT_TTL_MS) {
      cached = { count: await patchModel(mongo).countDocuments({ status: 'pending' }), at: Date.now() };
    }
    return cached.count;
  }
  return {
    waiting,
    /** Throws QUEUE_FULL when `adding` more registrations would pass the bound. */
    async admit(adding = 1): Promise<void> {
      const count = await waiting();
      if (count + adding > limit) {
        throw new DomainError('QUEUE_FULL', `${count} registrations are waiting to be anchored (limit ${limit}); retry later.`, {
          retryAfterSeconds: QUEUE_RETRY_AFTER_SECONDS,
        });
      }
    },
  };
}

export type RegistrationQueue = ReturnType<typeof registrationQueue>;

import { LRUCache } from 'lru-cache';
import type { SerializedJson } from './cacheable';

export interface VerdictAnswer extends SerializedJson {
  /** Settled answers (authentic, invalid, revoked-key) may be kept; pending and not-found ones change soon. */
  settled: boolean;
}

export interface VerdictCacheOptions {
  /** How long a settled answer is served from memory; 0 turns the cache off. */
  ttlMs: number;
  maxEntries: number;
}

/**
 * Settled verification answers kept in the API process for as long as the answer's own max-age lets a CDN keep
 * them, so a popular patch costs one database read per interval rather than one per tap. Concurrent requests for
 * the same uid share one computation, which also keeps a burst on one patch from fanning out to the database.
 * Per process: replicas may each serve an answer up to `ttlMs` old, as any cache in front of them may.
 */
export class VerdictCache {
  private readonly settled: LRUCache<string, VerdictAnswer> | null;
  private readonly inFlight = new Map<string, Promise<VerdictAnswer>>();

  constructor(options: VerdictCacheOptions) {
    this.settled = options.ttlMs > 0 ? new LRUCache({ max: options.maxEntries, ttl: options.ttlMs, ttlAutopurge: false }) : null;
  }

  answer(key: string, compute: () => Promise<VerdictAnswer>): Promise<VerdictAnswer> {
    const kept = this.settled?.get(key);
    if (kept) return Promise.resolve(kept);
    const running = this.inFlight.get(key);
    if (running) return running;
    const computed = compute()
      .then((answer) => {
        if (answer.settled) this.settled?.set(key, answer);
        return answer;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, computed);
    return computed;
  }

  get size(): number {
    return this.settled?.size ?? 0;
  }
}

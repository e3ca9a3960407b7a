import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { AppConfig } from '../src/config';
import type { Logger } from '../src/logging/logger';
import type { Verification } from '../src/registration/verify';
import { parseVerdictChange, VERDICT_CHANGES_CHANNEL, type VerdictChange } from '../src/registration/verdictChanges';

export interface VerdictCacheOptions {
  /** How long a settled verdict is kept without a change being announced; 0 turns the cache off. */
  ttlMs: number;
  maxEntries: number;
}

export interface KeptVerdict<T> {
  value: T;
  /** Settled verdicts (authentic, invalid, revoked-key from local chain state) may be kept; others change soon. */
  settled: boolean;
}

/**
 * Settled verification verdicts kept in the API process, so a patch costs one database reading per change rather
 * than one per tap. Writers announce changes on Redis (src/registration/verdictChanges.ts) and every process drops
 * what they name; the time to live bounds what a missed announcement can cost. Concurrent requests for the same uid
 * share one computation, which also keeps a burst on one patch from fanning out to the database.
 */
export class VerdictCache<T> {
  private readonly kept: LRUCache<string, KeptVerdict<T>> | null;
  private readonly inFlight = new Map<string, Promise<KeptVerdict<T>>>();
  /** Bumped by every change, so a computation that started before a change is not kept after it. */
  private generation = 0;
  private readonly onForgetAll: (() => void)[] = [];

  constructor(options: VerdictCacheOptions) {
    this.kept = options.ttlMs > 0 ? new LRUCache({ max: options.maxEntries, ttl: options.ttlMs }) : null;
  }

  get enabled(): boolean {
    return this.kept !== null;
  }

  get size(): number {
    return this.kept?.size ?? 0;
  }

  answer(key: string, compute: () => Promise<KeptVerdict<T>>): Promise<KeptVerdict<T>> {
    const kept = this.kept?.get(key);
    if (kept) return Promise.resolve(kept);
    const running = this.inFlight.get(key);
    if (running) return running;
    const startedIn = this.generation;
    const computed = compute()
      .then((verdict) => {
        if (verdict.settled && startedIn === this.generation) this.kept?.set(key, verdict);
        return verdict;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, computed);
    return computed;
  }

  forget(change: VerdictChange): void {
    this.generation++;
    if (change !== 'all') for (const key of change) this.kept?.delete(key);
    else {
      this.kept?.clear();
      for (const listener of this.onForgetAll) listener();
    }
  }

  /** Runs `listener` whenever every verdict is forgotten: other caches a verdict is built from must not outlive it. */
  whenAllForgotten(listener: () => void): void {
    this.onForgetAll.push(listener);
  }
}

/**
 * Follows announced verdict changes on a connection of its own (a subscribed connection can do nothing else), and
 * forgets everything whenever it (re)subscribes. Returns the function that stops following.
 */
export function followVerdictChanges(
  redis: Redis,
  cache: Pick<VerdictCache<unknown>, 'enabled' | 'forget'>,
  logger: Pick<Logger, 'warn'>,
): () => void {
  if (!cache.enabled) return () => undefined;
  const subscriber = redis.duplicate({ lazyConnect: false });
  subscriber.on('error', (err) => logger.warn('verdict change subscription error', { err }));
  // Subscribed on every (re)connection: the connection queues nothing while away.
  subscriber.on('ready', () => {
    subscriber
      .subscribe(VERDICT_CHANGES_CHANNEL)
      // Whatever was announced while away is lost: start again from the database.
      .then(() => cache.forget('all'))
      .catch((err: unknown) => logger.warn('verdict change subscription failed', { err }));
  });
  subscriber.on('message', (channel: string, message: string) => {
    if (channel === VERDICT_CHANGES_CHANNEL) cache.forget(parseVerdictChange(message));
  });
  return () => subscriber.disconnect();
}

/**
 * The process's verdict cache from configuration, following announced changes on `redis` until `stop` is called
 * (a disabled cache opens no connection).
 */
export function verdictCacheFromConfig(deps: {
  config: Pick<AppConfig, 'verification'>;
  redis: Redis;
  logger: Pick<Logger, 'warn'>;
}): VerdictCache<Verification> & { stop(): void } {
  const cache = new VerdictCache<Verification>({
    ttlMs: deps.config.verification.cacheTtlMs,
    maxEntries: deps.config.verification.cacheMaxEntries,
  });
  return Object.assign(cache, { stop: followVerdictChanges(deps.redis, cache, deps.logger) });
}

/**
 * Client-side token bucket shared by every call of one WOC client (WhatsOnChain allows about 3 requests/s without
 * a key). Written as GCRA: each acquire books the next slot synchronously, so concurrent callers queue in order
 * without a lock, and a burst of `burst` requests may go out at once.
 */
export interface RateLimiter {
  acquire(): Promise<void>;
}

export function createRateLimiter(options: {
  requestsPerSecond: number;
  burst?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}): RateLimiter {
  if (!(options.requestsPerSecond > 0)) throw new RangeError('requestsPerSecond must be positive');
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = 1000 / options.requestsPerSecond;
  const tolerance = (Math.max(1, Math.floor(options.burst ?? 1)) - 1) * interval;
  let theoreticalArrival = 0;
  return {
    async acquire() {
      const t = now();
      theoreticalArrival = Math.max(theoreticalArrival, t);
      const wait = theoreticalArrival - tolerance - t;
      theoreticalArrival += interval;
      if (wait > 0) await sleep(wait);
    },
  };
}

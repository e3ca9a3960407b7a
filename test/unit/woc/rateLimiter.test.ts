import { createRateLimiter } from '../../../src/woc/rateLimiter';
import { fullJitterDelay, parseRetryAfter } from '../../../src/net/retry';

/** A clock that only moves when someone sleeps on it. */
function fakeTime() {
  let now = 0;
  const sleeps: number[] = [];
  return {
    now: () => now,
    sleep: (ms: number) => {
      sleeps.push(ms);
      now += ms;
      return Promise.resolve();
    },
    sleeps,
    advance: (ms: number) => (now += ms),
  };
}

describe('client-side rate limiter', () => {
  it('lets a burst through, then spaces requests at the configured rate', async () => {
    const time = fakeTime();
    const limiter = createRateLimiter({ requestsPerSecond: 4, burst: 2, now: time.now, sleep: time.sleep });
    for (let i = 0; i < 5; i++) await limiter.acquire();
    expect(time.sleeps).toEqual([250, 250, 250]);
  });

  it('queues concurrent callers in order without letting them through together', async () => {
    const time = { now: () => 0, sleeps: [] as number[] };
    const limiter = createRateLimiter({ requestsPerSecond: 2, now: time.now, sleep: (ms) => (time.sleeps.push(ms), Promise.resolve()) });
    await Promise.all([limiter.acquire(), limiter.acquire(), limiter.acquire()]);
    expect(time.sleeps).toEqual([500, 1000]);
  });

  it('refills after an idle spell', async () => {
    const time = fakeTime();
    const limiter = createRateLimiter({ requestsPerSecond: 1, burst: 3, now: time.now, sleep: time.sleep });
    for (let i = 0; i < 3; i++) await limiter.acquire();
    time.advance(10_000);
    for (let i = 0; i < 3; i++) await limiter.acquire();
    expect(time.sleeps).toEqual([]);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => createRateLimiter({ requestsPerSecond: 0 })).toThrow(RangeError);
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });

  it('draws full-jitter delays below an exponential cap', () => {
    expect(fullJitterDelay(0, () => 0.999)).toBe(199);
    expect(fullJitterDelay(3, () => 0.5)).toBe(800);
    expect(fullJitterDelay(10, () => 0.999)).toBe(4_995);
    expect(fullJitterDelay(2, () => 0)).toBe(0);
  });
});

import { VerdictCache, type VerdictAnswer } from '../../../api/verdictCache';
import { serializeJson } from '../../../api/cacheable';

const answerOf = (value: unknown, settled: boolean): VerdictAnswer => ({ ...serializeJson(value), settled });

describe('VerdictCache', () => {
  it('computes once for concurrent requests of one key, and keeps a settled answer', async () => {
    const cache = new VerdictCache({ ttlMs: 60_000, maxEntries: 10 });
    let computations = 0;
    const compute = async () => {
      computations += 1;
      await new Promise((r) => setTimeout(r, 20));
      return answerOf({ status: 'authentic', n: computations }, true);
    };
    const answers = await Promise.all(Array.from({ length: 10 }, () => cache.answer('PP-1', compute)));
    expect(computations).toBe(1);
    expect(new Set(answers.map((a) => a.body))).toEqual(new Set(['{"status":"authentic","n":1}']));
    expect((await cache.answer('PP-1', compute)).body).toBe('{"status":"authentic","n":1}');
    expect(computations).toBe(1);
  });

  it('does not keep an unsettled answer or a failure', async () => {
    const cache = new VerdictCache({ ttlMs: 60_000, maxEntries: 10 });
    let computations = 0;
    const pending = () => Promise.resolve(answerOf({ status: 'pending', n: ++computations }, false));
    await cache.answer('PP-2', pending);
    expect((await cache.answer('PP-2', pending)).body).toBe('{"status":"pending","n":2}');
    await expect(cache.answer('PP-3', () => Promise.reject(new Error('database down')))).rejects.toThrow('database down');
    expect((await cache.answer('PP-3', pending)).body).toBe('{"status":"pending","n":3}');
    expect(cache.size).toBe(0);
  });

  it('keeps nothing with a ttl of 0, and at most maxEntries', async () => {
    const off = new VerdictCache({ ttlMs: 0, maxEntries: 10 });
    let computations = 0;
    const settled = () => Promise.resolve(answerOf({ n: ++computations }, true));
    await off.answer('PP-4', settled);
    await off.answer('PP-4', settled);
    expect(computations).toBe(2);
    expect(off.size).toBe(0);

    const small = new VerdictCache({ ttlMs: 60_000, maxEntries: 2 });
    for (const uid of ['A', 'B', 'C']) await small.answer(uid, settled);
    expect(small.size).toBe(2);
  });

  it('computes again once a settled answer is older than its ttl', async () => {
    const cache = new VerdictCache({ ttlMs: 30, maxEntries: 10 });
    let computations = 0;
    const settled = () => Promise.resolve(answerOf({ n: ++computations }, true));
    await cache.answer('PP-5', settled);
    await new Promise((r) => setTimeout(r, 60));
    expect((await cache.answer('PP-5', settled)).body).toBe('{"n":2}');
  });
});

import { VerdictCache, type KeptVerdict } from '../../../api/verdictCache';

type Answer = { status: string; n: number };
const verdict = (status: string, n: number, settled: boolean): KeptVerdict<Answer> => ({ value: { status, n }, settled });

describe('VerdictCache', () => {
  it('computes once for concurrent requests of one key, and keeps a settled verdict', async () => {
    const cache = new VerdictCache<Answer>({ ttlMs: 60_000, maxEntries: 10 });
    let computations = 0;
    const compute = async () => {
      computations += 1;
      await new Promise((r) => setTimeout(r, 20));
      return verdict('authentic', computations, true);
    };
    const answers = await Promise.all(Array.from({ length: 10 }, () => cache.answer('PP-1', compute)));
    expect(computations).toBe(1);
    expect(new Set(answers.map((a) => a.value.n))).toEqual(new Set([1]));
    expect((await cache.answer('PP-1', compute)).value.n).toBe(1);
    expect(computations).toBe(1);
  });

  it('does not keep an unsettled verdict or a failure', async () => {
    const cache = new VerdictCache<Answer>({ ttlMs: 60_000, maxEntries: 10 });
    let computations = 0;
    const pending = () => Promise.resolve(verdict('pending', ++computations, false));
    await cache.answer('PP-2', pending);
    expect((await cache.answer('PP-2', pending)).value.n).toBe(2);
    await expect(cache.answer('PP-3', () => Promise.reject(new Error('database down')))).rejects.toThrow('database down');
    expect((await cache.answer('PP-3', pending)).value.n).toBe(3);
    expect(cache.size).toBe(0);
  });

  it('forgets the uids a change names, or every verdict, and keeps nothing computed before a change', async () => {
    const cache = new VerdictCache<Answer>({ ttlMs: 60_000, maxEntries: 10 });
    let computations = 0;
    const settled = () => Promise.resolve(verdict('authentic', ++computations, true));
    for (const uid of ['A', 'B', 'C']) await cache.answer(uid, settled);
    cache.forget(['A']);
    expect((await cache.answer('A', settled)).value.n).toBe(4);
    expect((await cache.answer('B', settled)).value.n).toBe(2);
    cache.forget('all');
    expect(cache.size).toBe(0);

    // A reading that began before the change may have seen the old state: answered, but not kept.
    let release!: () => void;
    const slow = cache.answer('D', () => new Promise((r) => (release = () => r(verdict('authentic', 99, true)))));
    cache.forget(['D']);
    release();
    expect((await slow).value.n).toBe(99);
    expect((await cache.answer('D', settled)).value.n).toBe(5);
  });

  it('keeps nothing with a ttl of 0, and at most maxEntries', async () => {
    const off = new VerdictCache<Answer>({ ttlMs: 0, maxEntries: 10 });
    let computations = 0;
    const settled = () => Promise.resolve(verdict('authentic', ++computations, true));
    await off.answer('PP-4', settled);
    await off.answer('PP-4', settled);
    expect(computations).toBe(2);
    expect(off.enabled).toBe(false);

    const small = new VerdictCache<Answer>({ ttlMs: 60_000, maxEntries: 2 });
    for (const uid of ['A', 'B', 'C']) await small.answer(uid, settled);
    expect(small.size).toBe(2);
  });

  it('computes again once a settled verdict is older than its ttl', async () => {
    const cache = new VerdictCache<Answer>({ ttlMs: 30, maxEntries: 10 });
    let computations = 0;
    const settled = () => Promise.resolve(verdict('authentic', ++computations, true));
    await cache.answer('PP-5', settled);
    await new Promise((r) => setTimeout(r, 60));
    expect((await cache.answer('PP-5', settled)).value.n).toBe(2);
  });
});

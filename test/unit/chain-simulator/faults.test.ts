import { FaultInjector, NO_FAULTS, parseFaultUpdate } from '../../../ops/stand-ins/chain-simulator/faults';
import { standInEnvironment } from '../../../src/config/standIns';

describe('fault settings', () => {
  it('accepts a partial update of known faults', () => {
    expect(parseFaultUpdate({ latencyMs: 250, error429Rate: 0.5, acceptThenForget: 1 })).toEqual({
      ok: true,
      update: { latencyMs: 250, error429Rate: 0.5, acceptThenForget: 1 },
    });
  });

  it('refuses unknown faults, rates outside [0, 1] and negative or fractional durations, naming each', () => {
    const result = parseFaultUpdate({ latncyMs: 5, error5xxRate: 1.5, propagationLagMs: -1, retryAfterSeconds: 0.5 });
    expect(result).toEqual({
      ok: false,
      problems: [
        'latncyMs: unknown fault',
        'error5xxRate: a number from 0 to 1',
        'propagationLagMs: a whole number ≥ 0',
        'retryAfterSeconds: a whole number ≥ 0',
      ],
    });
    expect(parseFaultUpdate([1]).ok).toBe(false);
  });
});

describe('fault injector', () => {
  it('injects nothing by default', () => {
    const faults = new FaultInjector(() => 0);
    expect(faults.settings).toEqual(NO_FAULTS);
    expect(faults.nextRequest()).toEqual({ kind: 'none' });
    expect(faults.forgetThisBroadcast()).toBe(false);
  });

  it('fails exactly the next N requests with 429 first, then 5xx, then none', () => {
    const faults = new FaultInjector(() => 0.99);
    faults.update({ error429Next: 1, error5xxNext: 2, retryAfterSeconds: 3 });
    expect([1, 2, 3, 4].map(() => faults.nextRequest())).toEqual([
      { kind: '429', retryAfterSeconds: 3 },
      { kind: '5xx' },
      { kind: '5xx' },
      { kind: 'none' },
    ]);
    expect(faults.settings).toMatchObject({ error429Next: 0, error5xxNext: 0 });
  });

  it('draws each rate against the random source', () => {
    const draws = [0.1, 0.9, 0.6, 0.7, 0.2];
    const faults = new FaultInjector(() => draws.shift()!);
    faults.update({ error429Rate: 0.5, error5xxRate: 0.5 });
    expect(faults.nextRequest()).toEqual({ kind: '429', retryAfterSeconds: 1 });
    expect(faults.nextRequest()).toEqual({ kind: 'none' });
    expect(faults.nextRequest()).toEqual({ kind: '5xx' });
  });

  it('forgets broadcasts at the configured rate and resets to no faults', () => {
    const faults = new FaultInjector(() => 0.3);
    faults.update({ acceptThenForget: 0.5, error5xxAfterAcceptRate: 0.2 });
    expect(faults.forgetThisBroadcast()).toBe(true);
    expect(faults.failAfterAccept()).toBe(false);
    expect(faults.reset()).toEqual(NO_FAULTS);
    expect(faults.forgetThisBroadcast()).toBe(false);
  });
});

describe('simulator environment', () => {
  it('reads NODE_ENV lower-cased and trimmed, development when unset', () => {
    expect(standInEnvironment({})).toEqual({ nodeEnv: 'development' });
    expect(standInEnvironment({ NODE_ENV: ' Production ' })).toEqual({ nodeEnv: 'production' });
    expect(standInEnvironment({ NODE_ENV: 'test' })).toEqual({ nodeEnv: 'test' });
  });
});

import type { PoolSettings } from '../../../src/config';
import { buildTransaction } from '../../../src/chain/transactions';
import { minWorthwhileChange } from '../../../src/chain/fees';
import { p2pkhTransactionFee, planSweep, planTopUp, splitFundsNeeded, sweepAmounts } from '../../../src/pool/planning';

const SETTINGS: PoolSettings = {
  minPool: 10,
  splitSizeSats: 5000,
  maxSplitOutputs: 40,
  dustThresholdSats: 2000,
  dustSweepLimit: 20,
  minConfirmations: 1,
  feePerKb: 100,
  sweepMaxInputs: 1000,
  confirmationPollSeconds: 30,
};

/** A small deterministic generator, so failures reproduce. */
function* cases(count: number): Generator<{ spendable: number; settings: PoolSettings }> {
  let seed = 7;
  const next = (max: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % max);
  for (let i = 0; i < count; i++) {
    yield {
      spendable: next(60),
      settings: {
        ...SETTINGS,
        minPool: 1 + next(50),
        maxSplitOutputs: 1 + next(45),
        splitSizeSats: 1 + next(20_000),
        feePerKb: next(1000),
      },
    };
  }
}

describe('pool planning', () => {
  it('splits exactly the deficit, capped at MAX_SPLIT_OUTPUTS, and skips a healthy pool', () => {
    for (const { spendable, settings } of cases(500)) {
      const plan = planTopUp(spendable, settings);
      if (spendable >= settings.minPool) expect(plan).toMatchObject({ action: 'skip', reason: 'pool_healthy' });
      else expect(plan).toMatchObject({ action: 'split', outputCount: Math.min(settings.minPool - spendable, settings.maxSplitOutputs) });
    }
  });

  it('asks for enough that the builder can pay every output, the fee and worthwhile change', () => {
    for (const { settings } of cases(200)) {
      for (const inputs of [1, 2, 5]) {
        const outputs = Math.max(1, settings.maxSplitOutputs);
        const needed = splitFundsNeeded(inputs, outputs, settings);
        const perInput = Math.ceil(needed / inputs);
        const tx = buildTransaction({
          inputs: Array.from({ length: inputs }, (_, i) => ({
            txid: i.toString(16).padStart(64, '0'),
            vout: 0,
            satoshis: perInput,
            lockingScriptHex: '76a914' + '00'.repeat(20) + '88ac',
            keyIdentifier: 'k',
          })),
          outputs: Array.from({ length: outputs }, () => ({
            kind: 'p2pkh' as const,
            address: '1BoatSLRHtKNngkdXEeobR76b53LETtpyT',
            satoshis: settings.splitSizeSats,
          })),
          changeAddress: '1BoatSLRHtKNngkdXEeobR76b53LETtpyT',
          minChangeSats: minWorthwhileChange(settings.feePerKb),
          feeRateSatPerKb: settings.feePerKb,
          network: 'main',
        });
        expect(tx.changeVout).not.toBeNull();
        expect(tx.fee).toBeLessThanOrEqual(p2pkhTransactionFee(inputs, outputs + 1, settings.feePerKb));
      }
    }
  });

  it('sweeps only dust from the funding address, smallest first, and waits for the dust limit on schedule', () => {
    const candidates = [300, 5000, 100, 1999, 2000, 700].map((satoshis, i) => ({ utxoId: `t${i}:0`, satoshis }));
    const manual = planSweep(candidates, SETTINGS, { dustOnly: true, trigger: 'manual' });
    expect(manual).toMatchObject({ action: 'sweep', utxoIds: ['t2:0', 't0:0', 't5:0', 't3:0'], inputCount: 4 });
    expect(planSweep(candidates, SETTINGS, { dustOnly: true, trigger: 'schedule' })).toMatchObject({
      action: 'skip',
      reason: 'below_dust_limit',
    });
    // A separate change address is swept whole.
    expect(planSweep(candidates, SETTINGS, { dustOnly: false, trigger: 'manual' })).toMatchObject({ inputCount: 6, totalSats: 10_099 });
  });

  it('pays everything but the fee, caps the inputs, and skips a sweep that would pay nothing', () => {
    const many = Array.from({ length: 1500 }, (_, i) => ({ utxoId: `m${i}:0`, satoshis: 1000 }));
    const plan = planSweep(many, SETTINGS, { dustOnly: true, trigger: 'schedule' });
    expect(plan).toMatchObject({ action: 'sweep', inputCount: 1000, remaining: 500 });
    if (plan.action === 'sweep') expect(plan.outputSats).toBe(plan.totalSats - plan.fee);
    const dust = [{ utxoId: 'd:0', satoshis: 5 }];
    expect(planSweep(dust, { ...SETTINGS, feePerKb: 1000 }, { dustOnly: true, trigger: 'manual' })).toMatchObject({
      action: 'skip',
      reason: 'not_worth_sweeping',
    });
    expect(sweepAmounts([1000, 2000], 0)).toEqual({ totalSats: 3000, fee: 0, outputSats: 3000 });
  });
});

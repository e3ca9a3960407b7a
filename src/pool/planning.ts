import type { PoolSettings } from '../config';
import {
  feeForSize,
  minWorthwhileChange,
  P2PKH_LOCKING_SCRIPT_BYTES,
  P2PKH_UNLOCKING_SCRIPT_MAX_BYTES,
  transactionSize,
} from '../chain/fees';

/**
 * Pure arithmetic of the pool operations: how many outputs a top-up makes and what it costs, which outputs a
 * sweep takes and what it pays out. No I/O, so the rules are unit-tested over many inputs.
 */

/** The size and fee of a P2PKH-only transaction with these counts. */
export function p2pkhTransactionFee(inputCount: number, outputCount: number, feePerKb: number): number {
  const size = transactionSize(
    new Array<number>(inputCount).fill(P2PKH_UNLOCKING_SCRIPT_MAX_BYTES),
    new Array<number>(outputCount).fill(P2PKH_LOCKING_SCRIPT_BYTES),
  );
  return feeForSize(size, feePerKb);
}

export type TopUpPlan =
  | { action: 'skip'; reason: 'pool_healthy'; spendable: number; target: number }
  | {
      action: 'split';
      spendable: number;
      target: number;
      /** Outputs this split creates: the deficit, capped at MAX_SPLIT_OUTPUTS. */
      outputCount: number;
      outputSats: number;
      /** Fee with one input; each extra input adds its own bytes (see {@link splitFundsNeeded}). */
      estimatedFee: number;
      requiredSats: number;
      /** Change below this goes to the fee: see `minWorthwhileChange` in src/chain/fees.ts. */
      minChangeSats: number;
    };

/** What a top-up should do, given how many spendable outputs the pool has. */
export function planTopUp(spendable: number, settings: PoolSettings): TopUpPlan {
  const target = settings.minPool;
  if (spendable >= target) return { action: 'skip', reason: 'pool_healthy', spendable, target };
  const outputCount = Math.min(target - spendable, settings.maxSplitOutputs);
  const estimatedFee = p2pkhTransactionFee(1, outputCount + 1, settings.feePerKb);
  return {
    action: 'split',
    spendable,
    target,
    outputCount,
    outputSats: settings.splitSizeSats,
    estimatedFee,
    requiredSats: splitFundsNeeded(1, outputCount, settings),
    minChangeSats: minWorthwhileChange(settings.feePerKb),
  };
}

/** Satoshis the inputs of a split must hold: the outputs, the fee with change, and change worth keeping. */
export function splitFundsNeeded(inputCount: number, outputCount: number, settings: PoolSettings): number {
  return (
    outputCount * settings.splitSizeSats +
    p2pkhTransactionFee(inputCount, outputCount + 1, settings.feePerKb) +
    minWorthwhileChange(settings.feePerKb)
  );
}

export interface SweepCandidate {
  utxoId: string;
  satoshis: number;
}

export type SweepPlan =
  | { action: 'skip'; reason: 'nothing_to_sweep' | 'below_dust_limit' | 'not_worth_sweeping'; eligible: number; dustOnly: boolean }
  | {
      action: 'sweep';
      utxoIds: string[];
      inputCount: number;
      totalSats: number;
      fee: number;
      outputSats: number;
      /** Left for a later run because of SWEEP_MAX_INPUTS. */
      remaining: number;
      dustOnly: boolean;
    };

export interface SweepRules {
  /**
   * True when the swept address is also where the pool's split outputs live: then only dust is taken, or the
   * sweep would undo the top-up.
   */
  dustOnly: boolean;
  /** Scheduled runs wait until DUST_SWEEP_LIMIT dust outputs have gathered; manual runs sweep what there is. */
  trigger: 'schedule' | 'manual';
}

/** Which outputs a sweep consolidates into one output, smallest first, and what that output holds. */
export function planSweep(candidates: SweepCandidate[], settings: PoolSettings, rules: SweepRules): SweepPlan {
  const eligible = candidates
    .filter((c) => !rules.dustOnly || c.satoshis < settings.dustThresholdSats)
    .sort((a, b) => a.satoshis - b.satoshis || a.utxoId.localeCompare(b.utxoId));
  const skip = (reason: 'nothing_to_sweep' | 'below_dust_limit' | 'not_worth_sweeping') =>
    ({ action: 'skip', reason, eligible: eligible.length, dustOnly: rules.dustOnly }) as const;
  if (eligible.length === 0) return skip('nothing_to_sweep');
  if (rules.trigger === 'schedule' && rules.dustOnly && eligible.length < settings.dustSweepLimit) return skip('below_dust_limit');

  const taken = eligible.slice(0, settings.sweepMaxInputs);
  const amounts = sweepAmounts(
    taken.map((c) => c.satoshis),
    settings.feePerKb,
  );
  if (amounts.outputSats < 1) return skip('not_worth_sweeping');
  return {
    action: 'sweep',
    utxoIds: taken.map((c) => c.utxoId),
    inputCount: taken.length,
    ...amounts,
    remaining: eligible.length - taken.length,
    dustOnly: rules.dustOnly,
  };
}

/** One output paying everything but the fee. */
export function sweepAmounts(inputSats: number[], feePerKb: number): { totalSats: number; fee: number; outputSats: number } {
  const totalSats = inputSats.reduce((sum, s) => sum + s, 0);
  const fee = p2pkhTransactionFee(inputSats.length, 1, feePerKb);
  return { totalSats, fee, outputSats: totalSats - fee };
}

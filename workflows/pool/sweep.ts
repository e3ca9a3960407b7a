import { sleep, workflowInfo } from '@temporalio/workflow';
import { reservationOwner } from '../../src/pool/ids';
import { type PoolOperationProgress, type SweepInput, type SweepReport } from './shared';
import { inputsMissingFailure, withFailureStatus } from '../shared/failures';
import { beginPoolRun, finishPoolRun, pool, spendReservedInputs } from './spending';

const MAX_SPEND_ROUNDS = 2;

/**
 * Consolidates the change address's outputs (only dust, when it is the funding address) into one output to the
 * destination. Runbook: "Change Address Sweep (CLI)". Id `sweep-<changeAddress>`: one at a time per address.
 * Signs by KMS key identifier only; reserved outputs are never touched; a dry run plans and calls no KMS.
 */
export function utxoSweepWorkflow(input: SweepInput): Promise<SweepReport> {
  return withFailureStatus(() => sweep(input));
}

async function sweep(input: SweepInput): Promise<SweepReport> {
  const progress = beginPoolRun('utxo-sweep');
  const dryRun = input.dryRun === true;
  const settings = await pool.loadPoolSettings();
  const accounts = await pool.resolvePoolAccounts({ verify: false });

  const base: SweepReport = {
    outcome: 'skipped',
    dryRun,
    requestedBy: input.requestedBy,
    changeAddress: input.changeAddress,
    destinationAddress: input.destinationAddress,
    dustOnly: false,
    eligible: 0,
    inputCount: 0,
    totalSats: 0,
    fee: 0,
    outputSats: 0,
    remaining: 0,
  };
  const owner = reservationOwner(workflowInfo().workflowId, workflowInfo().runId);
  for (let round = 1; round <= MAX_SPEND_ROUNDS; round++) {
    progress.attempt = round;
    progress.step = 'syncing';
    await pool.syncAddress({ keyIdentifier: input.changeKeyId, address: input.changeAddress });
    progress.step = 'planning';
    const plan = await pool.planSweep({ sweep: input, accounts, settings });
    if (plan.action === 'skip') return finish({ ...base, reason: plan.reason, eligible: plan.eligible, dustOnly: plan.dustOnly }, progress);
    const planned: SweepReport = {
      ...base,
      dustOnly: plan.dustOnly,
      eligible: plan.inputCount + plan.remaining,
      inputCount: plan.inputCount,
      totalSats: plan.totalSats,
      fee: plan.fee,
      outputSats: plan.outputSats,
      remaining: plan.remaining,
    };
    if (dryRun) return finish({ ...planned, outcome: 'dry_run' }, progress);

    progress.step = 'reserving';
    const reserved = await pool.reserveSweepInputs({ owner, utxoIds: plan.utxoIds, feePerKb: settings.feePerKb });
    const destinationIsPool = input.destinationAddress === accounts.funding.address;
    const transaction = await spendReservedInputs({
      owner,
      plan: {
        inputs: reserved.inputs,
        outputs: [{ kind: 'p2pkh', address: input.destinationAddress, satoshis: reserved.outputSats }],
        minChangeSats: 1,
        feeRateSatPerKb: settings.feePerKb,
      },
      // The consolidated output joins the pool when it pays the funding address.
      poolOutputs: () =>
        destinationIsPool
          ? [
              {
                vout: 0,
                satoshis: reserved.outputSats,
                lockingScriptHex: accounts.funding.lockingScriptHex,
                keyIdentifier: accounts.funding.keyIdentifier,
              },
            ]
          : [],
      minConfirmations: settings.minConfirmations,
      confirmationPollSeconds: settings.confirmationPollSeconds,
      progress,
    });
    if (transaction) {
      return finish(
        {
          ...planned,
          outcome: 'completed',
          inputCount: reserved.inputs.length,
          totalSats: reserved.totalSats,
          fee: reserved.fee,
          outputSats: reserved.outputSats,
          transaction,
        },
        progress,
      );
    }
    progress.step = 'resyncing';
    await sleep(`${round * 10} seconds`);
  }
  throw inputsMissingFailure("the sweep's", MAX_SPEND_ROUNDS);
}

function finish(report: SweepReport, progress: PoolOperationProgress): SweepReport {
  return finishPoolRun(report, progress, {
    reason: report.reason ?? null,
    inputs: report.inputCount,
    txid: report.transaction?.txid ?? null,
    fee: report.transaction?.fee ?? null,
  });
}

import { sleep, workflowInfo } from '@temporalio/workflow';
import { reservationOwner } from '../../src/pool/ids';
import { type PoolOperationProgress, type TopUpInput, type TopUpReport } from './shared';
import { inputsMissingFailure, withFailureStatus } from '../shared/failures';
import { beginPoolRun, finishPoolRun, pool, spendReservedInputs } from './spending';

/** Rebuilds after `Missing inputs` before giving up; each round resyncs first and waits a little longer. */
const MAX_SPEND_ROUNDS = 3;

/**
 * Tops the UTXO pool up by splitting a funding output into UTXO_SPLIT_SIZE_SATS outputs.
 * Runbook: "Registration failing with insufficient funds". Id `utxo-topup-<fundingKeyId>`: one at a time.
 */
export function utxoTopUpWorkflow(input: TopUpInput): Promise<TopUpReport> {
  return withFailureStatus(() => topUp(input));
}

async function topUp(input: TopUpInput): Promise<TopUpReport> {
  const progress = beginPoolRun('utxo-topup');
  const dryRun = input.dryRun === true;

  const settings = await pool.loadPoolSettings();
  // Dry runs trust the configured addresses rather than asking the KMS: they make no KMS call at all.
  const accounts = await pool.resolvePoolAccounts({ verify: !dryRun });
  progress.step = 'syncing';
  let sync = await pool.syncPool(accounts);
  progress.step = 'planning';
  const plan = await pool.planTopUp({ accounts, settings, chainHeight: sync.chainHeight });

  const report: TopUpReport = {
    outcome: 'skipped',
    dryRun,
    requestedBy: input.requestedBy,
    spendableBefore: plan.spendable,
    target: plan.target,
    outputCount: 0,
    outputSats: settings.splitSizeSats,
    fundsAvailableSats: plan.fundsAvailableSats,
    settings,
  };
  if (plan.action === 'skip') return finish({ ...report, reason: plan.reason }, progress);
  const planned = { ...report, outputCount: plan.outputCount, estimatedFee: plan.estimatedFee, requiredSats: plan.requiredSats };
  if (dryRun) {
    return finish({ ...planned, outcome: 'dry_run', sufficientFunds: plan.fundsAvailableSats >= plan.requiredSats }, progress);
  }

  const owner = reservationOwner(workflowInfo().workflowId, workflowInfo().runId);
  const refusedInputs: string[] = [];
  for (let round = 1; round <= MAX_SPEND_ROUNDS; round++) {
    progress.attempt = round;
    progress.step = 'reserving';
    const inputs = await pool.reserveSplitInputs({
      owner,
      attempt: round,
      accounts,
      settings,
      chainHeight: sync.chainHeight,
      outputCount: plan.outputCount,
      ...(refusedInputs.length > 0 && { excludeUtxoIds: [...refusedInputs] }),
    });
    const transaction = await spendReservedInputs({
      owner,
      plan: {
        inputs,
        outputs: Array.from({ length: plan.outputCount }, () => ({
          kind: 'p2pkh' as const,
          address: accounts.funding.address,
          satoshis: settings.splitSizeSats,
        })),
        changeAddress: accounts.change.address,
        minChangeSats: plan.minChangeSats,
        feeRateSatPerKb: settings.feePerKb,
      },
      poolOutputs: (signed) => [
        ...Array.from({ length: plan.outputCount }, (_, vout) => ({
          vout,
          satoshis: settings.splitSizeSats,
          lockingScriptHex: accounts.funding.lockingScriptHex,
          keyIdentifier: accounts.funding.keyIdentifier,
        })),
        ...(signed.changeVout === null
          ? []
          : [
              {
                vout: signed.changeVout,
                satoshis: signed.changeSatoshis,
                lockingScriptHex: accounts.change.lockingScriptHex,
                keyIdentifier: accounts.change.keyIdentifier,
              },
            ]),
      ],
      minConfirmations: settings.minConfirmations,
      confirmationPollSeconds: settings.confirmationPollSeconds,
      progress,
    });
    if (transaction) return finish({ ...planned, outcome: 'completed', transaction }, progress);

    // `Missing inputs` (or a conflict) for a tx the chain does not know: our view was stale. Resync, then rebuild
    // with other inputs: the refused ones may still look unspent while the chain catches up.
    refusedInputs.push(...inputs.map((i) => `${i.txid}:${i.vout}`));
    progress.step = 'resyncing';
    await sleep(`${round * 10} seconds`);
    sync = await pool.syncPool(accounts);
  }
  throw inputsMissingFailure("the split's", MAX_SPEND_ROUNDS);
}

function finish(report: TopUpReport, progress: PoolOperationProgress): TopUpReport {
  return finishPoolRun(report, progress, {
    reason: report.reason ?? null,
    outputs: report.outputCount,
    txid: report.transaction?.txid ?? null,
    fee: report.transaction?.fee ?? null,
  });
}

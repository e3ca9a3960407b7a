import { proxyActivities, setHandler, sleep, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { ChainActivities } from '../../activities/chain/chainActivities';
import type { PoolActivities } from '../../activities/pool/poolActivities';
import type { BuildTransactionInput } from '../../src/chain/transactions';
import { CHAIN_FAILURES, failureType } from '../shared/failures';
import { TXID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { poolProgressQuery, type PoolOperationProgress, type SpendSummary } from './shared';

// Signing 1000 inputs is one KMS request of a few seconds; rejected keys fail at once (non-retryable). The activity
// heartbeats while the KMS works, so a worker lost mid-call is noticed in 30 s, not after the whole timeout.
const signer = proxyActivities<ChainActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});

// Rebroadcasting the same bytes is safe (the node answers "already known"), so a lost answer is simply retried.
// After the last attempt the outcome is unknown: the reservation stays for the reconciler, which asks the chain.
// Three minutes covers the WhatsOnChain client's own retries and Retry-After waits, so its verdict is not cut off.
const broadcaster = proxyActivities<ChainActivities>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 15 },
});

/** Polls that find the broadcast tx unknown to the chain before it is sent again. */
const REBROADCAST_AFTER_UNSEEN_POLLS = 3;

/** Pool activities (reads and keyed writes on our own stores, chain reads): idempotent, so retried patiently. */
export const pool = proxyActivities<PoolActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
});

export interface NewOutput {
  vout: number;
  satoshis: number;
  lockingScriptHex: string;
  keyIdentifier: string;
}

export interface SpendRequest {
  owner: string;
  plan: Omit<BuildTransactionInput, 'network'>;
  /** Which of the signed transaction's outputs join the pool, and under which key. */
  poolOutputs(signed: { changeVout: number | null; changeSatoshis: number }): NewOutput[];
  minConfirmations: number;
  confirmationPollSeconds: number;
  progress: PoolOperationProgress;
  /** Runs once the node has the transaction, before the confirmation wait (batch anchors hand out proofs here). */
  afterBroadcast?: (txid: string) => Promise<void>;
}

/** Opens a pool run: its progress query and its search attributes (kind, status running). */
export function beginPoolRun(kind: string): PoolOperationProgress {
  const progress: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(poolProgressQuery, () => progress);
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: kind },
    { key: WORKFLOW_STATUS, value: 'running' },
  ]);
  return progress;
}

/**
 * Closes a pool run: status = its outcome, and a memo summary, which shows in `temporal workflow list` and the
 * health route without fetching the result.
 */
export function finishPoolRun<R extends { outcome: string }>(
  report: R,
  progress: PoolOperationProgress,
  summary: Record<string, unknown>,
): R {
  progress.step = 'done';
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: report.outcome }]);
  upsertMemo({ summary: { outcome: report.outcome, ...summary } });
  return report;
}

/**
 * Sign → broadcast → record the spend → wait for confirmations → add the new outputs, for inputs the caller has
 * reserved. Returns null when the node said `Missing inputs` (or a conflict) for a transaction it does not know: the
 * caller resyncs and rebuilds with other inputs.
 * Whenever the node definitely did not take the transaction, the reservations are given back first.
 */
export async function spendReservedInputs(request: SpendRequest): Promise<SpendSummary | null> {
  const { progress } = request;
  progress.step = 'signing';
  let signed;
  try {
    signed = await signer.signTransaction(request.plan);
  } catch (err) {
    await pool.giveBackReservations(request.owner);
    throw err;
  }
  progress.txid = signed.txid;
  upsertSearchAttributes([{ key: TXID, value: signed.txid }]);

  progress.step = 'broadcasting';
  try {
    await broadcaster.broadcastTransaction(signed);
  } catch (err) {
    const type = failureType(err);
    if (type === CHAIN_FAILURES.missingInputs || type === CHAIN_FAILURES.mempoolConflict) {
      // A lost answer to an earlier attempt can make our own tx look like a conflict: if the chain knows it, it went through.
      if ((await pool.recordConfirmations(signed.txid)) === null) {
        progress.lastError = type;
        await pool.giveBackReservations(request.owner);
        return null;
      }
    } else {
      if (type !== undefined && type !== CHAIN_FAILURES.chainUnavailable) await pool.giveBackReservations(request.owner);
      throw err;
    }
  }

  await pool.recordPoolSpend({
    txid: signed.txid,
    inputs: request.plan.inputs.map((i) => ({ txid: i.txid, vout: i.vout })),
    owner: request.owner,
  });
  await request.afterBroadcast?.(signed.txid);

  progress.step = 'confirming';
  let confirmed = await pool.recordConfirmations(signed.txid);
  let unseenPolls = 0;
  while ((confirmed?.confirmations ?? 0) < request.minConfirmations) {
    await sleep(`${request.confirmationPollSeconds} seconds`);
    confirmed = await pool.recordConfirmations(signed.txid);
    progress.confirmations = confirmed?.confirmations ?? 0;
    // A node can acknowledge a tx and still lose it (or a reorg can evict it): the same bytes are sent again,
    // which is harmless when it is known. A refusal now is not final either: the next poll asks again.
    if (confirmed === null && ++unseenPolls % REBROADCAST_AFTER_UNSEEN_POLLS === 0) {
      await broadcaster.broadcastTransaction(signed).catch(() => undefined);
    }
  }
  const confirmations = confirmed?.confirmations ?? 0;
  progress.confirmations = confirmations;
  await pool.ingestPoolOutputs({ txid: signed.txid, blockHeight: confirmed?.blockHeight ?? null, outputs: request.poolOutputs(signed) });
  return {
    txid: signed.txid,
    fee: signed.fee,
    sizeBytes: signed.size,
    inputs: request.plan.inputs.length,
    outputs: signed.outputCount,
    confirmations,
    blockHeight: confirmed?.blockHeight ?? null,
  };
}

import {
  type ActivityOptions,
  ApplicationFailure,
  condition,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AnchoringActivities } from '../../activities/anchoring/anchoringActivities';
import type { MerkleProof } from '../../src/anchoring/merkle';
import { reservationOwner } from '../../src/pool/ids';
import type { PoolOperationProgress, SpendSummary } from '../pool/shared';
import { pool, spendReservedInputs } from '../pool/spending';
import { failureDetails, failureMessage, failureType, inputsMissingFailure, withFailureStatus } from '../shared/failures';
import { POOL_FAILURES } from '../pool/shared';
import { TXID, WORKFLOW_STATUS } from '../shared/searchAttributes';
import type { RegistrationActivities } from '../../activities/registration/registrationActivities';
import {
  anchorAssignedSignal,
  anchorConfirmedSignal,
  anchorQueuedSignal,
  anchorSettledSignal,
  type AnchorAssignment,
  type AnchorConfirmation,
  type AnchoringPolicy,
  type AnchorSettlement,
} from './shared';

// Reads and keyed reservations: idempotent, retried patiently. Insufficient funds is non-retryable.
export const anchoring = proxyActivities<AnchoringActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
});

/** Activities that keep a record workflow's own documents, and its KMS calls: idempotent, so retried patiently. */
export const RECORD_ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 30 },
};

/** A settled registration's own writes, when its batch closed without settling it. */
const settling = proxyActivities<RegistrationActivities>(RECORD_ACTIVITY_OPTIONS);

/** The issuer signature waits on the KMS: it heartbeats meanwhile, so a worker lost mid-call is replaced in 30 s. */
export const ISSUER_SIGNING_OPTIONS: ActivityOptions = { ...RECORD_ACTIVITY_OPTIONS, heartbeatTimeout: '30 seconds' };

const MAX_ANCHOR_ROUNDS = 3;
/** Anchors wait for confirmed pool outputs rather than fail: the top-up schedule adds them (runbook, pool). */
const WAIT_FOR_FUNDS_PATCH = 'anchor-waits-for-pool-funds';
const FUNDS_WAIT_LIMIT_MS = 24 * 3600_000;
/** Waits double from the planner's hint (its confirmation poll) up to this: a day of waiting is ~300 tries (~3,000 events). */
const FUNDS_WAIT_MAX_SECONDS = 300;

export interface AnchorOutcome {
  transaction: SpendSummary;
  proofs: MerkleProof[];
  vout: number;
}

/**
 * Anchors the Merkle root of these record hashes in one transaction through the pool: plan (reserve one input) →
 * sign → broadcast → confirmations. When the node reports the input missing for a transaction it does not know,
 * the next round rebuilds with other inputs; after three such rounds the anchor fails.
 */
export async function anchorRecordHashes(request: {
  label: string;
  recordHashes: string[];
  owner: string;
  progress: PoolOperationProgress;
  afterBroadcast?: (txid: string, proofs: MerkleProof[]) => Promise<void>;
  /** Confirmations to wait for here; the pool's change output is added only once confirmed. */
  minConfirmations?: number;
}): Promise<AnchorOutcome> {
  const refused: string[] = [];
  for (let round = 1; round <= MAX_ANCHOR_ROUNDS; round++) {
    const anchor = await waitingForFunds(request.progress, () =>
      anchoring.planAnchor({
        label: request.label,
        recordHashes: request.recordHashes,
        owner: request.owner,
        round,
        ...(refused.length > 0 && { excludeUtxoIds: [...refused] }),
      }),
    );
    const afterBroadcast = request.afterBroadcast;
    const transaction = await spendReservedInputs({
      owner: request.owner,
      plan: anchor.plan,
      poolOutputs: (signed) =>
        signed.changeVout === null ? [] : [{ vout: signed.changeVout, satoshis: signed.changeSatoshis, ...anchor.change }],
      minConfirmations: request.minConfirmations ?? anchor.minConfirmations,
      confirmationPollSeconds: anchor.pollSeconds,
      progress: request.progress,
      ...(afterBroadcast && { afterBroadcast: (txid: string) => afterBroadcast(txid, anchor.proofs) }),
    });
    if (transaction) return { transaction, proofs: anchor.proofs, vout: 0 };
    refused.push(...anchor.plan.inputs.map((i) => `${i.txid}:${i.vout}`));
    await sleep(`${round * 5} seconds`);
  }
  throw inputsMissingFailure("the anchor's", MAX_ANCHOR_ROUNDS);
}

/**
 * Too few confirmed pool outputs is backpressure, not failure: the anchor waits (its progress and search attribute
 * say so, and the planner's refusals raise PatchProofPoolInsufficientFunds) while the pool's top-up schedule adds
 * outputs, and fails only after a day without funds. Runs that failed at once before this existed replay as they
 * were (patched).
 */
async function waitingForFunds<T>(progress: PoolOperationProgress, plan: () => Promise<T>): Promise<T> {
  const startedWaiting = Date.now();
  for (let waits = 0; ; waits++) {
    try {
      return await plan();
    } catch (err) {
      if (failureType(err) !== POOL_FAILURES.insufficientFunds || !patched(WAIT_FOR_FUNDS_PATCH)) throw err;
      if (Date.now() - startedWaiting > FUNDS_WAIT_LIMIT_MS) throw err;
      progress.step = 'waiting-for-funds';
      progress.lastError = failureMessage(err);
      upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'waiting-for-funds' }]);
      const hint = (failureDetails(err) as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds ?? 30;
      await sleep(`${Math.min(FUNDS_WAIT_MAX_SECONDS, Math.max(1, hint) * 2 ** Math.min(waits, 10))} seconds`);
      upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'anchoring' }]);
    }
  }
}

/** How long a record waits for its batch before asking again (the batcher may have been terminated). */
const BATCH_ANSWER_TIMEOUT = '10 minutes';

export interface AnchoredRecord {
  txid: string;
  vout: number;
  proof: MerkleProof;
  blockHeight: number | null;
  confirmations: number;
  mode: 'batch' | 'single';
}

/**
 * Anchors one record in the configured mode and waits for its confirmations. Batch: the record goes to the anchor
 * batcher and this workflow waits for its proof, then for confirmations. Single: a one-leaf tree in a transaction
 * of its own. Both give the same proof format. `onTxid` runs once the anchor transaction is known.
 */
export async function anchorRecord(request: {
  key: string;
  label: string;
  recordHash: string;
  progress: PoolOperationProgress;
  onTxid: (txid: string) => Promise<void>;
}): Promise<AnchoredRecord> {
  // Every record's run shows the same status and txid search attributes while it anchors.
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'anchoring' }]);
  const onTxid = async (txid: string) => {
    upsertSearchAttributes([{ key: TXID, value: txid }]);
    await request.onTxid(txid);
  };
  const policy = await anchoring.anchoringPolicy();
  const info = workflowInfo();
  if (policy.mode === 'single') {
    const outcome = await anchorRecordHashes({
      label: request.label,
      recordHashes: [request.recordHash],
      owner: reservationOwner(info.workflowId, info.runId),
      progress: request.progress,
      afterBroadcast: onTxid,
      minConfirmations: policy.minConfirmations,
    });
    const status = await pool.recordConfirmations(outcome.transaction.txid);
    return {
      txid: outcome.transaction.txid,
      vout: outcome.vout,
      proof: outcome.proofs[0]!,
      blockHeight: status?.blockHeight ?? null,
      confirmations: status?.confirmations ?? outcome.transaction.confirmations,
      mode: 'single',
    };
  }

  let assignment: AnchorAssignment | undefined;
  let queuedIn: string | undefined;
  setHandler(anchorAssignedSignal, (answer) => {
    assignment ??= answer;
  });
  setHandler(anchorQueuedSignal, ({ batchWorkflowId }) => {
    queuedIn = batchWorkflowId;
  });
  request.progress.step = 'waiting-for-batch';
  while (!assignment) {
    // A record its batch holds waits for it (it may wait long for pool funds); asking the batcher again would put
    // the record into a second batch. Only a batch that closed without answering (terminated) sends it back.
    if (queuedIn === undefined) {
      await anchoring.requestBatchAnchor({ key: request.key, recordHash: request.recordHash, subjectWorkflowId: info.workflowId });
    } else if (!(await anchoring.anchorBatchOpen({ workflowId: queuedIn }))) {
      queuedIn = undefined;
      continue;
    }
    await condition(() => assignment !== undefined, BATCH_ANSWER_TIMEOUT);
  }
  const answer: AnchorAssignment = assignment;
  if (!answer.ok) {
    request.progress.lastError = answer.reason;
    throw ApplicationFailure.nonRetryable(answer.reason, answer.type);
  }
  request.progress.txid = answer.txid;
  await onTxid(answer.txid);
  request.progress.step = 'confirming';
  if (answer.confirmationsSignalled) {
    let confirmed: AnchorConfirmation | undefined;
    setHandler(anchorConfirmedSignal, (confirmation) => {
      if (confirmation.txid === answer.txid) confirmed ??= confirmation;
    });
    // The batch counts the confirmations once for all its records; only if it closed without saying (terminated)
    // does the record count them itself, below.
    while (!(await condition(() => confirmed !== undefined, BATCH_ANSWER_TIMEOUT))) {
      if (!(await anchoring.anchorBatchOpen({ workflowId: answer.batchWorkflowId }))) break;
    }
    if (confirmed) {
      request.progress.confirmations = confirmed.confirmations;
      return {
        txid: answer.txid,
        vout: answer.vout,
        proof: answer.proof,
        blockHeight: confirmed.blockHeight,
        confirmations: confirmed.confirmations,
        mode: 'batch',
      };
    }
  }
  const status = await confirmationsOf(answer.txid, policy, request.progress);
  return { txid: answer.txid, vout: answer.vout, proof: answer.proof, ...status, mode: 'batch' };
}

/** Polls a transaction's confirmations on durable timers until the policy's minimum. */
async function confirmationsOf(
  txid: string,
  policy: AnchoringPolicy,
  progress: PoolOperationProgress,
): Promise<{ confirmations: number; blockHeight: number | null }> {
  let status = await pool.recordConfirmations(txid);
  while ((status?.confirmations ?? 0) < policy.minConfirmations) {
    await sleep(`${policy.pollSeconds} seconds`);
    status = await pool.recordConfirmations(txid);
    progress.confirmations = status?.confirmations ?? 0;
  }
  progress.confirmations = status?.confirmations ?? 0;
  return { confirmations: status?.confirmations ?? 0, blockHeight: status?.blockHeight ?? null };
}

/**
 * How long a settled record waits for its batch before asking where it stands: longer than a batch normally takes
 * (an hour, plus twenty minutes per confirmation: blocks come every ten on average), so the question is rare; a
 * batch waiting for pool funds keeps holding it.
 */
function settlementGuardMs(confirmations: number): number {
  return 3600_000 + confirmations * 20 * 60_000;
}

/**
 * Waits for the anchor batch to settle a record (`AnchorRequest.settle`): the batch writes the record's state and
 * signals once, with the confirmations. The handler is set before the request goes out, so no signal is missed.
 * A batch that closed without settling the record (terminated) leaves it to count its own confirmations, or to ask
 * the batcher again if its transaction never went out.
 */
export function awaitSettlement(request: { key: string; uid: string; progress: PoolOperationProgress }): {
  settled: (recordHash: string, confirmations: number) => Promise<AnchoredRecord>;
} {
  let settlement: AnchorSettlement | undefined;
  setHandler(anchorSettledSignal, (answer) => {
    settlement ??= answer;
  });
  const settled = async (recordHash: string, confirmations: number): Promise<AnchoredRecord> => {
    request.progress.step = 'waiting-for-batch';
    while (!(await condition(() => settlement !== undefined, settlementGuardMs(confirmations)))) {
      const found = await anchoring.settledRecordState({ key: request.key, uid: request.uid });
      if (found.state === 'held') continue;
      if (found.state === 'lost') {
        const { workflowId } = workflowInfo();
        await anchoring.requestBatchAnchor({
          key: request.key,
          recordHash,
          subjectWorkflowId: workflowId,
          settle: { kind: 'registration', uid: request.uid },
        });
        continue;
      }
      request.progress.txid = found.txid;
      const policy = await anchoring.anchoringPolicy();
      const status = await confirmationsOf(found.txid, policy, request.progress);
      if (found.state === 'broadcast') {
        await settling.markRegistrationsAnchored({
          txid: found.txid,
          blockHeight: status.blockHeight,
          broadcastAt: new Date().toISOString(),
          records: [{ uid: request.uid, recordHash }],
        });
      }
      return { txid: found.txid, vout: found.vout, proof: found.proof, ...status, mode: 'batch' };
    }
    const answer = settlement!;
    if (!answer.ok) {
      request.progress.lastError = answer.reason;
      throw ApplicationFailure.nonRetryable(answer.reason, answer.type);
    }
    request.progress.txid = answer.txid;
    request.progress.confirmations = answer.confirmations;
    return {
      txid: answer.txid,
      vout: answer.vout,
      proof: answer.proof,
      blockHeight: answer.blockHeight,
      confirmations: answer.confirmations,
      mode: 'batch',
    };
  };
  return { settled };
}

/**
 * Runs a signed record's workflow body (registration, transfer): on failure the record is marked failed with the
 * activity's own message, the run's status is `failed`, and the cause surfaces as the workflow's failure.
 */
export function runRecordWorkflow<T>(body: () => Promise<T>, markFailed: (reason: string) => Promise<void>): Promise<T> {
  return withFailureStatus(async () => {
    try {
      return await body();
    } catch (err) {
      await markFailed(failureMessage(err));
      throw err;
    }
  });
}

/** A record workflow's query answer: its own progress, plus the anchor's txid, confirmations and last error. */
export function recordProgressView<P extends object>(
  progress: P,
  anchor: PoolOperationProgress,
): () => P & Partial<Pick<PoolOperationProgress, 'txid' | 'confirmations' | 'lastError'>> {
  return () => ({
    ...progress,
    // A record whose anchor waits for pool funds says so where operators look first.
    ...(anchor.step === 'waiting-for-funds' && { step: anchor.step }),
    ...(anchor.txid && { txid: anchor.txid }),
    ...(anchor.confirmations !== undefined && { confirmations: anchor.confirmations }),
    ...(anchor.lastError && { lastError: anchor.lastError }),
  });
}

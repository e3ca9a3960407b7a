import {
  ActivityFailure,
  ApplicationFailure,
  proxyActivities,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RegistrationActivities } from '../../activities/registration/registrationActivities';
import { reservationOwner } from '../../src/pool/ids';
import type { PoolOperationProgress } from '../pool/shared';
import { spendReservedInputs, withFailureStatus } from '../pool/spending';
import { PATCH_UID, TXID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { registrationProgressQuery, type RegistrationInput, type RegistrationProgress, type RegistrationResult } from './shared';

// Keyed writes and KMS calls: idempotent, retried patiently; the KMS client retries inside each attempt too.
const registration = proxyActivities<RegistrationActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 30 },
});

const MAX_ANCHOR_ROUNDS = 3;

/**
 * Registers a patch: pending record → canonical record → issuer signature (KMS) → anchor (single mode: one
 * transaction per record, a one-leaf tree) → N confirmations on durable timers → anchored. Id
 * `registration-<uid>`: a uid is registered at most once.
 */
export function registrationWorkflow(input: RegistrationInput): Promise<RegistrationResult> {
  const uid = input.request.product.uid_tag_id;
  return withFailureStatus(async () => {
    try {
      return await register(input, uid);
    } catch (err) {
      await registration.markRegistrationFailed({ uid, reason: failureMessage(err) });
      throw err;
    }
  });
}

async function register(input: RegistrationInput, uid: string): Promise<RegistrationResult> {
  const progress: RegistrationProgress = { step: 'persisting' };
  const spending: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(registrationProgressQuery, () => ({
    ...progress,
    ...(spending.txid && { txid: spending.txid }),
    ...(spending.confirmations !== undefined && { confirmations: spending.confirmations }),
    ...(spending.lastError && { lastError: spending.lastError }),
  }));
  const info = workflowInfo();
  upsertSearchAttributes([
    { key: PATCH_UID, value: uid },
    { key: WORKFLOW_KIND, value: 'registration' },
    { key: WORKFLOW_STATUS, value: 'pending' },
  ]);

  const { recordHash } = await registration.persistPendingRegistration({
    registrationId: info.workflowId,
    request: input.request,
    requestHash: input.requestHash,
    ...(input.idempotencyKey && { idempotencyKey: input.idempotencyKey }),
    registeredAt: info.startTime.toISOString(),
  });
  progress.recordHash = recordHash;
  progress.step = 'signing';
  await registration.signRegistrationRecord({ uid });

  progress.step = 'anchoring';
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'anchoring' }]);
  const owner = reservationOwner(info.workflowId, info.runId);
  const refused: string[] = [];
  for (let round = 1; round <= MAX_ANCHOR_ROUNDS; round++) {
    const anchor = await registration.planSingleAnchor({ uid, owner, round, ...(refused.length > 0 && { excludeUtxoIds: [...refused] }) });
    const transaction = await spendReservedInputs({
      owner,
      plan: anchor.plan,
      poolOutputs: (signed) =>
        signed.changeVout === null ? [] : [{ vout: signed.changeVout, satoshis: signed.changeSatoshis, ...anchor.change }],
      minConfirmations: anchor.minConfirmations,
      confirmationPollSeconds: anchor.pollSeconds,
      progress: spending,
    });
    if (spending.txid) {
      upsertSearchAttributes([{ key: TXID, value: spending.txid }]);
      await registration.markRegistrationAnchoring({ uid, txid: spending.txid });
    }
    if (transaction) {
      const blockHeight = await registration.anchorBlockHeight(transaction.txid);
      await registration.markRegistrationAnchored({ uid, txid: transaction.txid, vout: 0, proof: anchor.proof, blockHeight });
      progress.step = 'anchored';
      upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'anchored' }]);
      upsertMemo({ summary: { uid, txid: transaction.txid, confirmations: transaction.confirmations } });
      return { uid, recordHash, txid: transaction.txid, vout: 0, proof: anchor.proof, confirmations: transaction.confirmations };
    }
    refused.push(...anchor.plan.inputs.map((i) => `${i.txid}:${i.vout}`));
    await sleep(`${round * 5} seconds`);
  }
  throw ApplicationFailure.nonRetryable(`the anchor's inputs were reported missing ${MAX_ANCHOR_ROUNDS} times`, 'MissingInputs');
}

/** The message an operator needs: an activity's own failure rather than "Activity task failed". */
function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

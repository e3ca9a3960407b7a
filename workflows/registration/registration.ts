import { patched, proxyActivities, setHandler, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { PendingRegistration, RegistrationActivities } from '../../activities/registration/registrationActivities';
import {
  anchorRecord,
  awaitSettlement,
  ISSUER_SIGNING_OPTIONS,
  RECORD_ACTIVITY_OPTIONS,
  recordProgressView,
  runRecordWorkflow,
  type AnchoredRecord,
} from '../anchoring/anchor';
import type { PoolOperationProgress } from '../pool/shared';
import { PATCH_UID, TXID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { registrationProgressQuery, type RegistrationInput, type RegistrationProgress, type RegistrationResult } from './shared';

const registration = proxyActivities<RegistrationActivities>(RECORD_ACTIVITY_OPTIONS);
const issuerSigning = proxyActivities<RegistrationActivities>(ISSUER_SIGNING_OPTIONS);

/** Runs from before it take the one-activity path below replay the step-by-step one (`registerStepByStep`). */
const SETTLED_BY_BATCH_PATCH = 'registration-settled-by-batch';

/**
 * Registers a patch. Id `registration-<uid>`: a uid is registered at most once. One activity writes the pending
 * record (canonical form and hash), has the issuer sign it (KMS) and hands it to the anchor batcher; the anchor
 * batch (workflows/anchoring, a batch of one in single mode) writes its anchoring and anchored state with its
 * other records and signals this workflow once the transaction has its confirmations.
 */
export function registrationWorkflow(input: RegistrationInput): Promise<RegistrationResult> {
  const uid = input.request.product.uid_tag_id;
  return runRecordWorkflow(
    () => (patched(SETTLED_BY_BATCH_PATCH) ? register(input, uid) : registerStepByStep(input, uid)),
    (reason) => registration.markRegistrationFailed({ uid, reason }),
  );
}

async function register(input: RegistrationInput, uid: string): Promise<RegistrationResult> {
  const progress: RegistrationProgress = { step: 'persisting' };
  const anchor: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(registrationProgressQuery, recordProgressView(progress, anchor));
  // Signals from the batch are taken from here on: none can arrive before the batcher has the request.
  const settlement = awaitSettlement({ key: `registration:${uid}`, uid, progress: anchor });
  const { recordHash, confirmations } = await issuerSigning.prepareRegistration(pendingRegistration(input));
  progress.recordHash = recordHash;
  progress.step = 'anchoring';
  return finish(uid, recordHash, await settlement.settled(recordHash, confirmations), progress);
}

/**
 * The record is anchored: the run's search attributes say so and name the transaction. No memo: the result holds the
 * same summary, and every event counts on a path run once per patch (20 at most).
 */
function finish(uid: string, recordHash: string, anchored: AnchoredRecord, progress: RegistrationProgress): RegistrationResult {
  progress.step = 'anchored';
  upsertSearchAttributes([
    { key: WORKFLOW_STATUS, value: 'anchored' },
    { key: TXID, value: anchored.txid },
  ]);
  return { uid, recordHash, txid: anchored.txid, vout: anchored.vout, proof: anchored.proof, confirmations: anchored.confirmations };
}

async function registerStepByStep(input: RegistrationInput, uid: string): Promise<RegistrationResult> {
  const progress: RegistrationProgress = { step: 'persisting' };
  const spending: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(registrationProgressQuery, recordProgressView(progress, spending));
  upsertSearchAttributes([
    { key: PATCH_UID, value: uid },
    { key: WORKFLOW_KIND, value: 'registration' },
    { key: WORKFLOW_STATUS, value: 'pending' },
  ]);

  const { recordHash } = await registration.persistPendingRegistration(pendingRegistration(input));
  progress.recordHash = recordHash;
  progress.step = 'signing';
  await issuerSigning.signRegistrationRecord({ uid });

  progress.step = 'anchoring';
  const anchored = await anchorRecord({
    key: `registration:${uid}`,
    label: uid,
    recordHash,
    progress: spending,
    onTxid: (txid) => registration.markRegistrationAnchoring({ uid, txid }),
  });
  await registration.markRegistrationAnchored({
    uid,
    txid: anchored.txid,
    vout: anchored.vout,
    proof: anchored.proof,
    blockHeight: anchored.blockHeight,
  });
  progress.step = 'anchored';
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'anchored' }]);
  upsertMemo({ summary: { uid, txid: anchored.txid, mode: anchored.mode, confirmations: anchored.confirmations } });
  return { uid, recordHash, txid: anchored.txid, vout: anchored.vout, proof: anchored.proof, confirmations: anchored.confirmations };
}

/** The pending record's inputs: the request, stamped with this run's id and start time. */
function pendingRegistration(input: RegistrationInput): PendingRegistration {
  const info = workflowInfo();
  return {
    registrationId: info.workflowId,
    request: input.request,
    requestHash: input.requestHash,
    ...(input.idempotencyKey && { idempotencyKey: input.idempotencyKey }),
    ...(input.actor && { actor: input.actor }),
    registeredAt: info.startTime.toISOString(),
  };
}

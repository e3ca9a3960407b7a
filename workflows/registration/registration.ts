import { proxyActivities, setHandler, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { RegistrationActivities } from '../../activities/registration/registrationActivities';
import { anchorRecord, ISSUER_SIGNING_OPTIONS, RECORD_ACTIVITY_OPTIONS, recordProgressView, runRecordWorkflow } from '../anchoring/anchor';
import type { PoolOperationProgress } from '../pool/shared';
import { PATCH_UID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { registrationProgressQuery, type RegistrationInput, type RegistrationProgress, type RegistrationResult } from './shared';

const registration = proxyActivities<RegistrationActivities>(RECORD_ACTIVITY_OPTIONS);
const issuerSigning = proxyActivities<RegistrationActivities>(ISSUER_SIGNING_OPTIONS);

/**
 * Registers a patch: pending record → canonical record → issuer signature (KMS) → anchor (batch or single mode,
 * workflows/anchoring) → N confirmations on durable timers → anchored. Id
 * `registration-<uid>`: a uid is registered at most once.
 */
export function registrationWorkflow(input: RegistrationInput): Promise<RegistrationResult> {
  const uid = input.request.product.uid_tag_id;
  return runRecordWorkflow(
    () => register(input, uid),
    (reason) => registration.markRegistrationFailed({ uid, reason }),
  );
}

async function register(input: RegistrationInput, uid: string): Promise<RegistrationResult> {
  const progress: RegistrationProgress = { step: 'persisting' };
  const spending: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(registrationProgressQuery, recordProgressView(progress, spending));
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

import { proxyActivities, setHandler, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { TransferActivities } from '../../activities/transfer/transferActivities';
import { anchorRecord, recordProgressView, runRecordWorkflow } from '../anchoring/anchor';
import type { PoolOperationProgress } from '../pool/shared';
import { PATCH_UID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { transferProgressQuery, type TransferInput, type TransferProgress, type TransferResult } from './shared';

// Keyed writes and KMS calls: idempotent, retried patiently; a stale head or missing patch fails at once.
const transfer = proxyActivities<TransferActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 30 },
});

// The issuer signature waits on the KMS: it heartbeats meanwhile, so a worker lost mid-call is replaced in 30 s.
const issuerSigning = proxyActivities<TransferActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 30 },
});

/**
 * Transfers a patch to a new owner: pending transfer record linked to the current head → issuer signature →
 * anchor (same modes and proof format as registrations) → confirmations → anchored, and the head moves to it.
 * Id `transfer-<uid>-<headTxid>`: one transfer per head.
 */
export function transferWorkflow(input: TransferInput): Promise<TransferResult> {
  const transferId = workflowInfo().workflowId;
  return runRecordWorkflow(
    () => runTransfer(input, transferId),
    (reason) => transfer.markTransferFailed({ transferId, reason }),
  );
}

async function runTransfer(input: TransferInput, transferId: string): Promise<TransferResult> {
  const progress: TransferProgress = { step: 'persisting' };
  const spending: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(transferProgressQuery, recordProgressView(progress, spending));
  upsertSearchAttributes([
    { key: PATCH_UID, value: input.uid },
    { key: WORKFLOW_KIND, value: 'transfer' },
    { key: WORKFLOW_STATUS, value: 'pending' },
  ]);

  const { recordHash, seq, from } = await transfer.persistPendingTransfer({
    transferId,
    request: input,
    startedAt: workflowInfo().startTime.toISOString(),
  });
  Object.assign(progress, { recordHash, seq, step: 'signing' });
  await issuerSigning.signTransferRecord({ transferId });

  progress.step = 'anchoring';
  const anchored = await anchorRecord({
    key: `transfer:${input.uid}:${seq}`,
    label: `transfer ${seq} of ${input.uid}`,
    recordHash,
    progress: spending,
    onTxid: (txid) => transfer.markTransferAnchoring({ transferId, txid }),
  });
  await transfer.markTransferAnchored({
    transferId,
    txid: anchored.txid,
    vout: anchored.vout,
    proof: anchored.proof,
    blockHeight: anchored.blockHeight,
  });
  progress.step = 'anchored';
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'anchored' }]);
  upsertMemo({ summary: { uid: input.uid, seq, txid: anchored.txid, mode: anchored.mode } });
  return {
    uid: input.uid,
    seq,
    from,
    to: input.newOwner,
    recordHash,
    txid: anchored.txid,
    vout: anchored.vout,
    proof: anchored.proof,
    confirmations: anchored.confirmations,
  };
}

import { proxyActivities, setHandler, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { TransferActivities } from '../../activities/transfer/transferActivities';
import { anchorRecord, ISSUER_SIGNING_OPTIONS, RECORD_ACTIVITY_OPTIONS, recordProgressView, runRecordWorkflow } from '../anchoring/anchor';
import type { PoolOperationProgress } from '../pool/shared';
import { PATCH_UID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { transferProgressQuery, type TransferInput, type TransferProgress, type TransferResult } from './shared';

const transfer = proxyActivities<TransferActivities>(RECORD_ACTIVITY_OPTIONS);
const issuerSigning = proxyActivities<TransferActivities>(ISSUER_SIGNING_OPTIONS);

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

import {
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  type SignalDefinition,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { MerkleProof } from '../../src/anchoring/merkle';
import { reservationOwner } from '../../src/pool/ids';
import { poolProgressQuery, type PoolOperationProgress } from '../pool/shared';
import { failureMessage, failureType } from '../shared/failures';
import { TXID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { pool } from '../pool/spending';
import type { RegistrationActivities } from '../../activities/registration/registrationActivities';
import { anchorRecordHashes, RECORD_ACTIVITY_OPTIONS } from './anchor';
import {
  anchorAssignedSignal,
  anchorBatchDoneSignal,
  anchorBatchHoldsQuery,
  anchorConfirmedSignal,
  anchorQueuedSignal,
  anchorSettledSignal,
  type AnchorAssignment,
  type AnchorSettlement,
  type AnchorBatchInput,
  type AnchorBatchResult,
  type AnchorRequest,
} from './shared';

const registrations = proxyActivities<RegistrationActivities>(RECORD_ACTIVITY_OPTIONS);

const ANNOUNCE_PATCH = 'batch-announces-itself';
const SIGNAL_CONFIRMATIONS_PATCH = 'batch-signals-confirmations';

/**
 * Anchors one batch: one transaction whose data output commits to the Merkle root of every record in the batch.
 * As soon as the node has the transaction, each record's workflow is handed its proof; this workflow then waits for
 * the confirmations, tells the records, and lets the change output rejoin the pool. Records that asked to be settled
 * (registrations) hear only once, at the end: the batch writes their anchoring and anchored state itself, in bulk.
 * If the batch cannot be anchored, every record's workflow is told why.
 */
export async function anchorBatchWorkflow(input: AnchorBatchInput): Promise<AnchorBatchResult> {
  const info = workflowInfo();
  const progress: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(poolProgressQuery, () => progress);
  setHandler(anchorBatchHoldsQuery, (key) => input.records.some((r) => r.key === key));
  const members = input.records.map((record, index) => ({ record, index }));
  const settled = members.flatMap((m) => (m.record.settle ? [{ ...m, uid: m.record.settle.uid }] : []));
  const signalled = members.filter((m) => !m.record.settle);
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'anchor-batch' },
    { key: WORKFLOW_STATUS, value: 'running' },
  ]);
  let handedOut = false;
  let broadcastAt: string | undefined;
  // The batcher holds its next cut while this batch goes out; a batch that cannot go out releases it too.
  const tellBatcher = async () => {
    if (!input.batcherWorkflowId) return;
    await getExternalWorkflowHandle(input.batcherWorkflowId)
      .signal(anchorBatchDoneSignal, { batchWorkflowId: info.workflowId })
      .catch(() => undefined);
  };
  // Confirmations are counted here, once for the transaction, and signalled to every record instead of each polling.
  const signalsConfirmations = patched(SIGNAL_CONFIRMATIONS_PATCH);
  // Records re-ask the batcher after a while without an answer; told which batch holds them, they wait for it instead.
  if (patched(ANNOUNCE_PATCH)) {
    await signalRecords(signalled, anchorQueuedSignal, () => ({ batchWorkflowId: info.workflowId }));
  }
  try {
    const outcome = await anchorRecordHashes({
      label: `a batch of ${input.records.length} records`,
      recordHashes: input.records.map((r) => r.recordHash),
      owner: reservationOwner(info.workflowId, info.runId),
      progress,
      afterBroadcast: async (txid, proofs) => {
        upsertSearchAttributes([{ key: TXID, value: txid }]);
        broadcastAt = new Date().toISOString();
        if (settled.length > 0) {
          await registrations.markRegistrationsAnchoring({
            txid,
            vout: 0,
            records: settled.map((s) => ({ uid: s.uid, proof: proofs[s.index]! })),
          });
        }
        await signalRecords(signalled, anchorAssignedSignal, (i): AnchorAssignment => ({
          ok: true,
          txid,
          vout: 0,
          proof: proofs[i] as MerkleProof,
          batchWorkflowId: info.workflowId,
          ...(signalsConfirmations && { confirmationsSignalled: true as const }),
        }));
        handedOut = true;
        await tellBatcher();
      },
    });
    const { transaction, proofs } = outcome;
    if (signalsConfirmations || settled.length > 0) {
      // The spend's last poll found the confirmations; batches from before settling records polled once more.
      const status = settled.length > 0 ? transaction : await pool.recordConfirmations(transaction.txid);
      const confirmation = {
        txid: transaction.txid,
        confirmations: status?.confirmations ?? transaction.confirmations,
        blockHeight: status?.blockHeight ?? null,
      };
      if (settled.length > 0) {
        await registrations.markRegistrationsAnchored({
          txid: transaction.txid,
          blockHeight: confirmation.blockHeight,
          broadcastAt: broadcastAt ?? new Date().toISOString(),
          records: settled.map((s) => ({ uid: s.uid, recordHash: s.record.recordHash })),
        });
        await signalRecords(settled, anchorSettledSignal, (i): AnchorSettlement => ({
          ok: true,
          ...confirmation,
          vout: 0,
          proof: proofs[i]!,
        }));
      }
      await signalRecords(signalled, anchorConfirmedSignal, () => confirmation);
    }
    const result: AnchorBatchResult = {
      txid: transaction.txid,
      count: input.records.length,
      root: outcome.proofs[0]!.root,
      fee: transaction.fee,
      feePerRecord: transaction.fee / input.records.length,
      confirmations: transaction.confirmations,
    };
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'anchored' }]);
    upsertMemo({ summary: { txid: result.txid, count: result.count, fee: result.fee } });
    return result;
  } catch (err) {
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'failed' }]);
    if (!handedOut) {
      await tellBatcher();
      const failure = { ok: false as const, reason: failureMessage(err), type: failureType(err) ?? 'AnchorFailed' };
      await signalRecords(signalled, anchorAssignedSignal, (): AnchorAssignment => failure);
      await signalRecords(settled, anchorSettledSignal, (): AnchorSettlement => failure);
    }
    // A settled record whose transaction was broadcast hears nothing more: it finds its state when it asks (settledRecordState).
    throw err;
  }
}

/**
 * Signals each record's workflow, with the payload for its index in the batch; one that has closed meanwhile
 * (terminated by an operator) is skipped.
 */
async function signalRecords<T>(
  members: { record: AnchorRequest; index: number }[],
  signal: SignalDefinition<[T]>,
  payload: (index: number) => T,
): Promise<void> {
  await Promise.allSettled(
    members.map(({ record, index }) => getExternalWorkflowHandle(record.subjectWorkflowId).signal(signal, payload(index))),
  );
}

import {
  getExternalWorkflowHandle,
  patched,
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
import { anchorRecordHashes } from './anchor';
import {
  anchorAssignedSignal,
  anchorConfirmedSignal,
  anchorQueuedSignal,
  type AnchorAssignment,
  type AnchorBatchInput,
  type AnchorBatchResult,
  type AnchorRequest,
} from './shared';

const ANNOUNCE_PATCH = 'batch-announces-itself';
const SIGNAL_CONFIRMATIONS_PATCH = 'batch-signals-confirmations';

/**
 * Anchors one batch: one transaction whose data output commits to the Merkle root of every record in the batch.
 * As soon as the node has the transaction, each record's workflow is handed its proof (it waits for confirmations
 * itself); this workflow then waits for the confirmations that let the change output rejoin the pool. If the
 * batch cannot be anchored, every record's workflow is told why.
 */
export async function anchorBatchWorkflow(input: AnchorBatchInput): Promise<AnchorBatchResult> {
  const info = workflowInfo();
  const progress: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(poolProgressQuery, () => progress);
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'anchor-batch' },
    { key: WORKFLOW_STATUS, value: 'running' },
  ]);
  let handedOut = false;
  // Confirmations are counted here, once for the transaction, and signalled to every record instead of each polling.
  const signalsConfirmations = patched(SIGNAL_CONFIRMATIONS_PATCH);
  // Records re-ask the batcher after a while without an answer; told which batch holds them, they wait for it instead.
  if (patched(ANNOUNCE_PATCH)) {
    await signalRecords(input.records, anchorQueuedSignal, () => ({ batchWorkflowId: info.workflowId }));
  }
  try {
    const outcome = await anchorRecordHashes({
      label: `a batch of ${input.records.length} records`,
      recordHashes: input.records.map((r) => r.recordHash),
      owner: reservationOwner(info.workflowId, info.runId),
      progress,
      afterBroadcast: async (txid, proofs) => {
        upsertSearchAttributes([{ key: TXID, value: txid }]);
        await signalRecords(input.records, anchorAssignedSignal, (i): AnchorAssignment => ({
          ok: true,
          txid,
          vout: 0,
          proof: proofs[i] as MerkleProof,
          batchWorkflowId: info.workflowId,
          ...(signalsConfirmations && { confirmationsSignalled: true as const }),
        }));
        handedOut = true;
      },
    });
    const { transaction } = outcome;
    if (signalsConfirmations) {
      const status = await pool.recordConfirmations(transaction.txid);
      const confirmation = {
        txid: transaction.txid,
        confirmations: status?.confirmations ?? transaction.confirmations,
        blockHeight: status?.blockHeight ?? null,
      };
      await signalRecords(input.records, anchorConfirmedSignal, () => confirmation);
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
      const reason = failureMessage(err);
      await signalRecords(input.records, anchorAssignedSignal, (): AnchorAssignment => ({
        ok: false,
        reason,
        type: failureType(err) ?? 'AnchorFailed',
      }));
    }
    throw err;
  }
}

/** Signals each record's workflow; one that has closed meanwhile (terminated by an operator) is skipped. */
async function signalRecords<T>(records: AnchorRequest[], signal: SignalDefinition<[T]>, payload: (index: number) => T): Promise<void> {
  await Promise.allSettled(records.map((record, i) => getExternalWorkflowHandle(record.subjectWorkflowId).signal(signal, payload(i))));
}

import { continueAsNew, proxyActivities, setHandler, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { BulkRegistrationActivities } from '../../activities/bulkRegistration/bulkRegistrationActivities';
import { reservationOwner } from '../../src/pool/ids';
import { anchoring, anchorRecordHashes, ISSUER_SIGNING_OPTIONS, RECORD_ACTIVITY_OPTIONS } from '../anchoring/anchor';
import type { PoolOperationProgress } from '../pool/shared';
import { pool } from '../pool/spending';
import { failureMessage, withFailureStatus } from '../shared/failures';
import { BATCH_ID, TXID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import {
  bulkRegistrationProgressQuery,
  type BulkRegistrationInput,
  type BulkRegistrationProgress,
  type BulkRegistrationResult,
} from './shared';

// Sealing a chunk writes up to 1,000 records: it heartbeats, so a worker lost mid-chunk is replaced in 30 s.
const bulk = proxyActivities<BulkRegistrationActivities>({ ...RECORD_ACTIVITY_OPTIONS, heartbeatTimeout: '30 seconds' });
const issuerSigning = proxyActivities<BulkRegistrationActivities>(ISSUER_SIGNING_OPTIONS);

const SEALING_CONCURRENCY = 3;

/**
 * Registers a batch of patches (`bulk-registration-<batchId>`): seals each chunk of up to 1,000 items (canonical
 * records, uid claims, the chunk's tree head), signs every tree head in one KMS request, anchors the tree of tree
 * heads in one transaction, waits for its confirmations once, then marks every record anchored. The items stay in
 * MongoDB: history holds ids and counts only. Every step is idempotent, so a crashed worker's successor, or a
 * continued-as-new run, resumes without signing or broadcasting again.
 */
export function bulkRegistrationWorkflow(input: BulkRegistrationInput): Promise<BulkRegistrationResult> {
  const progress: BulkRegistrationProgress = { step: 'sealing', chunks: 0, chunksSealed: 0, registered: 0, duplicates: 0 };
  const spending: PoolOperationProgress = { step: 'starting', attempt: 0 };
  setHandler(bulkRegistrationProgressQuery, () => ({
    ...progress,
    ...(spending.step === 'waiting-for-funds' && { step: 'waiting-for-funds' as const }),
    ...(spending.txid && { txid: spending.txid }),
    ...(spending.confirmations !== undefined && { confirmations: spending.confirmations }),
    ...(spending.lastError && { lastError: spending.lastError }),
  }));
  upsertSearchAttributes([
    { key: BATCH_ID, value: input.batchId },
    { key: WORKFLOW_KIND, value: 'bulk-registration' },
    { key: WORKFLOW_STATUS, value: 'registering' },
  ]);
  return withFailureStatus(async () => {
    try {
      return await register(input, progress, spending);
    } catch (err) {
      progress.step = 'failed';
      await bulk.markBatchFailed({ batchId: input.batchId, reason: failureMessage(err) });
      throw err;
    }
  });
}

async function register(
  input: BulkRegistrationInput,
  progress: BulkRegistrationProgress,
  spending: PoolOperationProgress,
): Promise<BulkRegistrationResult> {
  const { batchId } = input;
  const { chunkCount } = await bulk.openBatch({ batchId });
  progress.chunks = chunkCount;
  // Chunks are sealed SEALING_CONCURRENCY at a time: each waits mostly on the database, which takes a few writers.
  for (let first = 0; first < chunkCount; first += SEALING_CONCURRENCY) {
    const wave = Array.from({ length: Math.min(SEALING_CONCURRENCY, chunkCount - first) }, (_, i) => first + i);
    for (const sealed of await Promise.all(wave.map((chunk) => bulk.sealChunk({ batchId, chunk })))) {
      progress.chunksSealed++;
      progress.registered += sealed.size;
      progress.duplicates += sealed.duplicates;
    }
    // Sealed chunks are found sealed again, so a new run picks up where this one stopped.
    if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof bulkRegistrationWorkflow>(input);
  }

  progress.step = 'signing';
  const { leaves } = await issuerSigning.signTreeHeads({ batchId });
  if (leaves.length === 0) {
    await bulk.completeBatch({ batchId, anchor: null });
    return finish(progress, { batchId, registered: 0, duplicates: progress.duplicates, txid: null, confirmations: 0 });
  }

  progress.step = 'anchoring';
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'anchoring' }]);
  const policy = await anchoring.anchoringPolicy();
  const info = workflowInfo();
  const outcome = await anchorRecordHashes({
    label: `batch ${batchId} (${progress.registered} records)`,
    recordHashes: leaves.map((l) => l.treeHeadHash),
    owner: reservationOwner(info.workflowId, info.runId),
    progress: spending,
    minConfirmations: policy.minConfirmations,
    afterBroadcast: async (txid, proofs) => {
      upsertSearchAttributes([{ key: TXID, value: txid }]);
      await bulk.markBatchBroadcast({ batchId, txid, anchors: leaves.map((l, i) => ({ chunk: l.chunk, proof: proofs[i]! })) });
      progress.step = 'confirming';
    },
  });
  const { txid } = outcome.transaction;
  const status = await pool.recordConfirmations(txid);
  await bulk.completeBatch({ batchId, anchor: { txid, blockHeight: status?.blockHeight ?? null } });
  return finish(progress, {
    batchId,
    registered: progress.registered,
    duplicates: progress.duplicates,
    txid,
    confirmations: status?.confirmations ?? outcome.transaction.confirmations,
  });
}

function finish(progress: BulkRegistrationProgress, result: BulkRegistrationResult): BulkRegistrationResult {
  progress.step = 'completed';
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'completed' }]);
  upsertMemo({ summary: { registered: result.registered, duplicates: result.duplicates, txid: result.txid } });
  return result;
}

import {
  condition,
  continueAsNew,
  ParentClosePolicy,
  patched,
  setHandler,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { anchorBatchWorkflowId } from '../../src/anchoring/ids';
import { anchorBatchWorkflow } from './batch';
import { anchorBatchDoneSignal, anchorBatcherStateQuery, anchorRequestSignal, type AnchorBatcherInput, type AnchorRequest } from './shared';

/** Batches per run before continue-as-new; each batch of 100 adds ~400 events (its signals and the child start). */
const BATCHES_PER_RUN = 25;
/**
 * How long a batched key is remembered, so a repeated request (a retried activity) does not anchor a record twice.
 * Shorter than the records' own re-request interval (10 minutes), so a record whose batch never answered is
 * taken again.
 */
const RECENT_KEY_MS = 5 * 60_000;

/** Group commit: a lone record pays no wait, records arriving while a batch goes out share the next transaction. */
const CUT_WHEN_IDLE_PATCH = 'batcher-cuts-when-idle';

/**
 * The anchor batcher (id `anchor-batcher`, started by the first request through signal-with-start): starts one
 * anchorBatchWorkflow per batch and goes on collecting. A batch is cut when `maxRecords` are waiting, or at once
 * when no batch is in flight (the last one has its transaction out, or failed), or `maxWaitSeconds` after the last
 * cut: group commit, so a record at low load waits for no one, and records arriving while a batch goes out share
 * the next transaction. (Runs from before waited `maxWaitSeconds` from the first waiting record.) Continue-as-new
 * keeps its history bounded and carries the requests still waiting.
 */
export async function anchorBatcherWorkflow(input: AnchorBatcherInput): Promise<void> {
  const pending: AnchorRequest[] = [...(input.pending ?? [])];
  const recent = new Map<string, number>(input.recentKeys ?? []);
  let batchesThisRun = 0;
  let lastBatchWorkflowId: string | undefined;
  const cutsWhenIdle = patched(CUT_WHEN_IDLE_PATCH);
  let lastCutAt = 0;
  let inFlight: string | undefined;
  setHandler(anchorBatchDoneSignal, ({ batchWorkflowId }) => {
    if (batchWorkflowId === inFlight) inFlight = undefined;
  });

  const limits = { maxRecords: input.maxRecords, maxWaitSeconds: input.maxWaitSeconds };
  setHandler(anchorRequestSignal, ({ limits: requested, ...request }) => {
    if (requested) Object.assign(limits, requested);
    if (recent.has(request.key) || pending.some((p) => p.key === request.key)) return;
    pending.push(request);
  });
  setHandler(anchorBatcherStateQuery, () => ({
    pending: pending.length,
    batchesThisRun,
    ...(lastBatchWorkflowId && { lastBatchWorkflowId }),
    ...(inFlight && { inFlight }),
  }));

  for (;;) {
    await condition(() => pending.length > 0);
    if (!cutsWhenIdle) {
      await condition(() => pending.length >= limits.maxRecords, `${limits.maxWaitSeconds} seconds`);
    } else if (inFlight !== undefined && pending.length < limits.maxRecords) {
      const waitMs = lastCutAt + limits.maxWaitSeconds * 1000 - Date.now();
      if (waitMs > 0) await condition(() => pending.length >= limits.maxRecords || inFlight === undefined, waitMs);
    }
    const batch = pending.splice(0, limits.maxRecords);
    const now = Date.now();
    for (const [key, at] of recent) if (now - at > RECENT_KEY_MS) recent.delete(key);
    for (const record of batch) recent.set(record.key, now);
    lastBatchWorkflowId = anchorBatchWorkflowId(batch[0]!.key, batch.length);
    // The batch outlives this run (continue-as-new closes it), so it is abandoned rather than cancelled.
    lastCutAt = Date.now();
    try {
      await startChild(anchorBatchWorkflow, {
        workflowId: lastBatchWorkflowId,
        args: [{ records: batch, ...(cutsWhenIdle && { batcherWorkflowId: workflowInfo().workflowId }) }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      });
      if (cutsWhenIdle) inFlight = lastBatchWorkflowId;
    } catch (err) {
      // The same batch already ran (same first record and size): its records were answered by it, or re-request.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    batchesThisRun++;
    if (batchesThisRun >= BATCHES_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof anchorBatcherWorkflow>({
        ...limits,
        pending,
        recentKeys: [...recent],
      });
    }
  }
}

/** Workflow-ID builders of the anchoring domain; no other code concatenates these IDs. */

/** One batcher per namespace: every batch-mode anchor request is signalled to it (signal-with-start). */
export const ANCHOR_BATCHER_WORKFLOW_ID = 'anchor-batcher';

/**
 * One workflow per batch, named after the batch's first record and its size. A record joins one batch only (the
 * batcher de-duplicates), so the id is unique, and it names a record an operator can search for.
 */
export function anchorBatchWorkflowId(firstRecordKey: string, count: number): string {
  return `anchor-batch-${firstRecordKey}-${count}`;
}

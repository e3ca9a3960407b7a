import type { Connection } from 'mongoose';
import { bulkRegistrationWorkflowId } from './ids';
import { tenantOf } from '../tenancy/apiKeys';
import {
  patchBatchChunkModel,
  patchBatchItemModel,
  patchBatchModel,
  type ChunkState,
  type ItemError,
  type PatchBatchChunkDocument,
  type PatchBatchDocument,
  type PatchBatchItemDocument,
} from './models';

/** An item's outcome as clients see it: a registered item's progress is its chunk's. */
export const ITEM_OUTCOMES = ['accepted', 'duplicate', 'invalid', 'anchoring', 'anchored', 'failed'] as const;
export type ItemOutcome = (typeof ITEM_OUTCOMES)[number];

export interface BatchView {
  batchId: string;
  workflowId: string;
  state: PatchBatchDocument['state'];
  itemCount: number;
  counts: Record<ItemOutcome, number>;
  txids: string[];
  timings: Record<string, string>;
  lastError?: string;
}

export interface ItemView {
  index: number;
  uid: string | null;
  state: ItemOutcome;
  registrationId?: string;
  txid?: string;
  proofUrl?: string;
  error?: ItemError;
}

type ChunkSummary = Omit<PatchBatchChunkDocument, 'recordHashes'>;

function chunkOutcome(chunk: ChunkSummary | undefined, batch: PatchBatchDocument): ItemOutcome {
  const byState: Record<ChunkState, ItemOutcome> = {
    sealed: 'accepted',
    signed: 'accepted',
    anchoring: 'anchoring',
    anchored: 'anchored',
    failed: 'failed',
  };
  if (!chunk) return batch.state === 'failed' ? 'failed' : 'accepted';
  return byState[chunk.state];
}

async function loadBatch(
  mongo: Connection,
  batchId: string,
  tenantId?: string,
): Promise<{ batch: PatchBatchDocument; chunks: Map<number, ChunkSummary> } | null> {
  const batch = await patchBatchModel(mongo).findById(batchId).lean();
  // Another tenant's batch does not exist for the caller.
  if (!batch || (tenantId !== undefined && tenantOf(batch) !== tenantId)) return null;
  const chunks = await patchBatchChunkModel(mongo).find({ batchId }, { recordHashes: 0 }).lean();
  return { batch, chunks: new Map(chunks.map((c) => [c.chunk, c])) };
}

/** A batch's counts per outcome, txids and timings: from the batch and its (at most ten) chunk documents. */
export async function getBatchView(mongo: Connection, batchId: string, tenantId?: string): Promise<BatchView | null> {
  const loaded = await loadBatch(mongo, batchId, tenantId);
  if (!loaded) return null;
  const { batch, chunks } = loaded;
  const counts: Record<ItemOutcome, number> = {
    accepted: 0,
    duplicate: 0,
    invalid: batch.invalidCount,
    anchoring: 0,
    anchored: 0,
    failed: 0,
  };
  // Repeats within the batch were refused at intake: they are neither valid nor invalid.
  counts.duplicate = batch.itemCount - batch.validCount - batch.invalidCount;
  let sealedItems = 0;
  for (const chunk of chunks.values()) {
    counts[chunkOutcome(chunk, batch)] += chunk.size;
    counts.duplicate += chunk.duplicates;
    sealedItems += chunk.size + chunk.duplicates;
  }
  counts[batch.state === 'failed' ? 'failed' : 'accepted'] += batch.validCount - sealedItems;
  const timings: Record<string, string> = { createdAt: batch.createdAt.toISOString() };
  for (const [name, at] of Object.entries(batch.timings ?? {})) if (at) timings[name] = new Date(at as Date).toISOString();
  const txids = [...new Set([...chunks.values()].flatMap((c) => (c.anchor ? [c.anchor.txid] : [])))];
  return {
    batchId,
    workflowId: bulkRegistrationWorkflowId(batchId),
    state: batch.state,
    itemCount: batch.itemCount,
    counts,
    txids,
    timings,
    ...(batch.lastError && { lastError: batch.lastError }),
  };
}

/** Which stored item states can show as an outcome. */
const STORED_STATE: Record<ItemOutcome, PatchBatchItemDocument['state']> = {
  accepted: 'accepted',
  duplicate: 'duplicate',
  invalid: 'invalid',
  anchoring: 'accepted',
  anchored: 'accepted',
  failed: 'accepted',
};

/**
 * A page of item outcomes in submission order, after `cursor` (the last index of the page before), optionally of
 * one outcome. Filtered on the batch and stored state (indexed equality), then by index here: FerretDB does ranges
 * and sorts in memory either way.
 */
export async function listBatchItems(
  mongo: Connection,
  batchId: string,
  options: { state?: ItemOutcome; cursor?: number; limit: number; tenantId?: string },
): Promise<{ items: ItemView[]; nextCursor: number | null } | null> {
  const loaded = await loadBatch(mongo, batchId, options.tenantId);
  if (!loaded) return null;
  const { batch, chunks } = loaded;
  const storedState = options.state ? STORED_STATE[options.state] : null;
  const filter = storedState ? { batchId, state: storedState } : { batchId };
  const stored = await patchBatchItemModel(mongo).find(filter, { requestJson: 0, unlockable: 0, requestHash: 0 }).lean();
  const after = options.cursor ?? -1;
  const views = stored
    .filter((item) => item.index > after)
    .sort((a, b) => a.index - b.index)
    .map((item) => itemView(item, batch, chunks))
    .filter((view) => !options.state || view.state === options.state);
  const page = views.slice(0, options.limit);
  return { items: page, nextCursor: views.length > options.limit ? page[page.length - 1]!.index : null };
}

function itemView(
  item: Omit<PatchBatchItemDocument, 'requestJson' | 'unlockable' | 'requestHash'>,
  batch: PatchBatchDocument,
  chunks: Map<number, ChunkSummary>,
): ItemView {
  const base = { index: item.index, uid: item.uid };
  if (item.state === 'invalid' || item.state === 'duplicate')
    return { ...base, state: item.state, ...(item.error && { error: item.error }) };
  const chunk = item.chunk === null ? undefined : chunks.get(item.chunk);
  const state = chunkOutcome(chunk, batch);
  return {
    ...base,
    state,
    ...(chunk && { registrationId: item._id }),
    ...(chunk?.anchor && { txid: chunk.anchor.txid }),
    ...(state === 'anchored' && item.uid && { proofUrl: `/v1/patches/${encodeURIComponent(item.uid)}/proof` }),
  };
}

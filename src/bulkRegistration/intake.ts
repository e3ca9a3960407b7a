import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { insertManyIgnoringDuplicates } from '../db/bulkWrites';
import { registrationRequestHash } from '../registration/intake';
import type { RegistrationRequest } from '../registration/record';
import type { StartCounter } from '../temporal/launch';
import { encryptContent, unlockableContentId, unlockableContentModel } from '../unlock/content';
import { batchIdFor, batchItemId, CHUNK_SIZE } from './ids';
import { startBulkRegistration } from './launch';
import type { RegistrationQueue } from '../registration/queue';
import { DEFAULT_TENANT_ID, type Actor } from '../tenancy/apiKeys';
import { patchBatchItemModel, patchBatchModel, type ItemError, type PatchBatchItemDocument } from './models';

export interface BatchIntakeDeps {
  temporal: Client;
  mongo: Connection;
  starts?: StartCounter;
  unlockContentSecret: string;
  /** The bound on registrations waiting to be anchored: a new batch must fit under it with its valid items. */
  queue?: Pick<RegistrationQueue, 'admit'>;
  /** The caller's registrations/day quota: a new batch takes its valid items from it. */
  quota?: { take(count: number): Promise<void> };
}

export interface ItemIssue {
  path: string;
  message: string;
}

/** One submitted item after validation against the single-registration schema. */
export type ValidatedItem =
  { ok: true; request: RegistrationRequest; unlockable?: { content: string } } | { ok: false; issues: ItemIssue[] };

export interface BatchSubmission {
  idempotencyKey: string;
  /** sha256 of the items as parsed. */
  bodyHash: string;
  items: ValidatedItem[];
  /** The API key that asks; its tenant owns the batch and its patches. */
  actor?: Actor;
}

export interface RejectedItem {
  index: number;
  error: ItemError;
}

export interface BatchAccepted {
  batchId: string;
  itemCount: number;
  accepted: number;
  /** Items refused at once: invalid, or a uid repeated within the batch. */
  rejected: RejectedItem[];
  /** True when this Idempotency-Key had made the batch before. */
  replayed: boolean;
}

/** The Idempotency-Key names a batch made from another body. */
export class BatchKeyConflictError extends Error {
  constructor(readonly batchId: string) {
    super('This Idempotency-Key was used for a batch with different items.');
    this.name = 'BatchKeyConflictError';
  }
}

/** Rows per insertMany: the items of a full batch go in ten commands rather than one very large one. */
const INSERT_ROWS = CHUNK_SIZE;

/**
 * Takes in a batch: stores every item (invalid ones with their error, so the batch's outcome lists them), then
 * starts its BulkRegistrationWorkflow, which reads the items from MongoDB: they never travel in workflow history.
 * The same key and body again finish what an earlier request began (a crash between the steps) and get the same
 * batch; the same key with other items is a BatchKeyConflictError.
 */
export async function submitBatch(deps: BatchIntakeDeps, submission: BatchSubmission): Promise<BatchAccepted> {
  const tenantId = submission.actor?.tenantId ?? DEFAULT_TENANT_ID;
  const batchId = batchIdFor(submission.idempotencyKey, tenantId);
  const batches = patchBatchModel(deps.mongo);
  const { docs, rejected, validCount } = itemDocuments(deps.unlockContentSecret, batchId, submission.items);
  // A retry of a batch already taken in passes; a new one must fit.
  if ((deps.queue || deps.quota) && !(await batches.exists({ _id: batchId }))) {
    await deps.queue?.admit(validCount);
    await deps.quota?.take(validCount);
  }
  const now = new Date();
  await batches.updateOne(
    { _id: batchId },
    {
      $setOnInsert: {
        idempotencyKey: submission.idempotencyKey,
        bodyHash: submission.bodyHash,
        state: 'receiving',
        itemCount: submission.items.length,
        validCount,
        invalidCount: submission.items.filter((item) => !item.ok).length,
        chunkCount: Math.ceil(validCount / CHUNK_SIZE),
        txid: null,
        lastError: null,
        createdAt: now,
        updatedAt: now,
        timings: {},
        tenantId,
        createdBy: submission.actor?.keyId ?? null,
        audit: submission.actor ? [{ at: now, action: 'submitted', keyId: submission.actor.keyId }] : [],
      },
    },
    { upsert: true },
  );
  const batch = (await batches.findById(batchId).lean())!;
  if (batch.bodyHash !== submission.bodyHash) throw new BatchKeyConflictError(batchId);
  const replayed = batch.createdAt.getTime() !== now.getTime();

  if (batch.state === 'receiving') {
    // Every write here is keyed, so a second request (a retry, or a concurrent twin) repeats them harmlessly.
    const items = patchBatchItemModel(deps.mongo);
    for (let i = 0; i < docs.length; i += INSERT_ROWS) await insertManyIgnoringDuplicates(items, docs.slice(i, i + INSERT_ROWS));
    const contents = docs.flatMap((d) =>
      d.unlockable && d.uid && d.requestHash
        ? [{ _id: unlockableContentId(d.uid, d.requestHash), uid: d.uid, ...d.unlockable, createdAt: now }]
        : [],
    );
    if (contents.length > 0) await insertManyIgnoringDuplicates(unlockableContentModel(deps.mongo), contents);
    // A batch with nothing valid in it is complete as soon as its outcome is stored.
    const accepted = validCount > 0 ? { state: 'accepted' } : { state: 'completed', 'timings.completedAt': new Date() };
    await batches.updateOne(
      { _id: batchId, state: 'receiving' },
      { $set: { ...accepted, 'timings.acceptedAt': new Date(), updatedAt: new Date() } },
    );
  }
  if (validCount > 0) await startBulkRegistration(deps.temporal, batchId, deps.starts, submission.actor);
  return { batchId, itemCount: submission.items.length, accepted: validCount, rejected, replayed };
}

/**
 * The stored form of each item. Valid items are numbered into chunks of CHUNK_SIZE in submission order; a uid that
 * appears earlier in the batch makes the later item a duplicate at once.
 */
function itemDocuments(
  secret: string,
  batchId: string,
  items: ValidatedItem[],
): { docs: PatchBatchItemDocument[]; rejected: RejectedItem[]; validCount: number } {
  const firstIndexOfUid = new Map<string, number>();
  const firstIndexOfTag = new Map<string, number>();
  const rejected: RejectedItem[] = [];
  let validCount = 0;
  const docs = items.map((item, index): PatchBatchItemDocument => {
    const base = { _id: batchItemId(batchId, index), batchId, index, unlockable: null, chunk: null };
    if (!item.ok) {
      const error: ItemError = {
        code: 'VALIDATION_FAILED',
        message: 'The item does not match the registration schema.',
        issues: item.issues,
      };
      rejected.push({ index, error });
      return { ...base, state: 'invalid', uid: null, requestJson: null, requestHash: null, error };
    }
    const uid = item.request.product.uid_tag_id;
    const requestHash = registrationRequestHash(secret, item.request, item.unlockable);
    const earlier = firstIndexOfUid.get(uid);
    if (earlier !== undefined) {
      const error: ItemError = { code: 'DUPLICATE', message: `${uid} appears earlier in this batch, at index ${earlier}.` };
      rejected.push({ index, error });
      return { ...base, state: 'duplicate', uid, requestJson: null, requestHash, error };
    }
    const tagUid = item.request.tag?.uid;
    const earlierTag = tagUid === undefined ? undefined : firstIndexOfTag.get(tagUid);
    if (earlierTag !== undefined) {
      const error: ItemError = { code: 'DUPLICATE', message: `Tag ${tagUid!} appears earlier in this batch, at index ${earlierTag}.` };
      rejected.push({ index, error });
      return { ...base, state: 'duplicate', uid, requestJson: null, requestHash, error };
    }
    if (tagUid !== undefined) firstIndexOfTag.set(tagUid, index);
    firstIndexOfUid.set(uid, index);
    const chunk = Math.floor(validCount / CHUNK_SIZE);
    validCount++;
    return {
      ...base,
      state: 'accepted',
      uid,
      requestJson: JSON.stringify(item.request),
      requestHash,
      unlockable: item.unlockable ? encryptContent(secret, uid, item.unlockable.content) : null,
      error: null,
      chunk,
    };
  });
  return { docs, rejected, validCount };
}

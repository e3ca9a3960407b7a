/** ID builders of the bulk-registration domain; no other code concatenates these IDs. */
import { createHash } from 'node:crypto';
import { DEFAULT_TENANT_ID } from '../tenancy/apiKeys';

/** Items per chunk: one Merkle tree, one signed tree head. */
export const CHUNK_SIZE = 1_000;
/** Items per batch (POST /v1/patch-batches). */
export const MAX_BATCH_ITEMS = 10_000;

export const BATCH_ID_PATTERN = /^pb-[0-9a-f]{24}$/;

/**
 * A batch's id follows from its Idempotency-Key, so a retry that lost the first answer (or a crash between storing
 * the items and starting the workflow) arrives at the same batch and finishes what the first request began.
 */
export function batchIdFor(idempotencyKey: string, tenantId: string = DEFAULT_TENANT_ID): string {
  // Each tenant has its own Idempotency-Key space; the default tenant keeps the ids it had before tenancy.
  const scoped = tenantId === DEFAULT_TENANT_ID ? idempotencyKey : `${tenantId}\u0000${idempotencyKey}`;
  return `pb-${createHash('sha256').update(`patch-batch:${scoped}`).digest('hex').slice(0, 24)}`;
}

export function isBatchId(value: string): boolean {
  return BATCH_ID_PATTERN.test(value);
}

export function bulkRegistrationWorkflowId(batchId: string): string {
  if (!isBatchId(batchId)) throw new RangeError('not a batch id');
  return `bulk-registration-${batchId}`;
}

/** One document per item, in submission order; the id also names the item's registration. */
export function batchItemId(batchId: string, index: number): string {
  return `${batchId}-${String(index).padStart(5, '0')}`;
}

/** The batch an item id (a bulk record's registrationId) belongs to, or null for any other id. */
export function batchIdOfItem(itemId: string): string | null {
  const match = /^(pb-[0-9a-f]{24})-\d{5}$/.exec(itemId);
  return match ? match[1]! : null;
}

export function batchChunkId(batchId: string, chunk: number): string {
  return `${batchId}-c${chunk}`;
}

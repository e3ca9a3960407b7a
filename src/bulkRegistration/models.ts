import { Schema, type Connection, type Model } from 'mongoose';
import type { MerkleProof } from '../anchoring/merkle';
import type { TreeHead } from '../anchoring/treeHead';
import type { EncryptedContent } from '../unlock/content';
import type { AuditEntry } from '../tenancy/apiKeys';

/**
 * A batch's life: `receiving` while its items are stored, `accepted` once all are, `registering` while its
 * workflow seals and signs chunks, `anchoring` once the anchor transaction is in the mempool, then `completed`
 * (every registered item anchored, or nothing left to anchor) or `failed`.
 */
export type BatchState = 'receiving' | 'accepted' | 'registering' | 'anchoring' | 'completed' | 'failed';

export interface BatchTimings {
  acceptedAt?: Date;
  sealedAt?: Date;
  signedAt?: Date;
  broadcastAt?: Date;
  completedAt?: Date;
  failedAt?: Date;
}

export interface PatchBatchDocument {
  _id: string;
  idempotencyKey: string;
  /** sha256 of the items as parsed, so a retry with another body under the same key is told apart. */
  bodyHash: string;
  state: BatchState;
  itemCount: number;
  /** Items that passed validation and were not repeated earlier in the batch. */
  validCount: number;
  invalidCount: number;
  chunkCount: number;
  txid: string | null;
  lastError: string | null;
  /** The registration time of every record in the batch (their signed `registeredAt`). */
  createdAt: Date;
  updatedAt: Date;
  timings: BatchTimings;
  /** The tenant that submitted it; absent on batches from before tenancy (the default tenant's). */
  tenantId?: string | null;
  /** The API key id that submitted it. */
  createdBy?: string | null;
  /** Admin and write actions on the batch, each with the acting key id. */
  audit?: AuditEntry[];
}

/**
 * An item's stored state: `invalid` or `duplicate` (its uid repeated earlier in the batch, or found registered when
 * its chunk was sealed), else `accepted`. An accepted item whose chunk is sealed owns its uid: its progress is its
 * chunk's.
 */
export type ItemState = 'accepted' | 'invalid' | 'duplicate';

export interface ItemError {
  code: 'VALIDATION_FAILED' | 'DUPLICATE';
  message: string;
  issues?: { path: string; message: string }[];
  /** For a duplicate: the registration that holds the uid. */
  registrationId?: string;
}

export interface PatchBatchItemDocument {
  _id: string;
  batchId: string;
  index: number;
  state: ItemState;
  uid: string | null;
  /**
   * The validated request as JSON text: FerretDB reads and writes one string far faster than the nested document
   * (a chunk's thousand items in a fraction of the time), and nothing queries inside it.
   */
  requestJson: string | null;
  requestHash: string | null;
  /** Unlockable content, encrypted as for a single registration; moved to its own collection when registered. */
  unlockable: EncryptedContent | null;
  error: ItemError | null;
  chunk: number | null;
}

/**
 * One chunk of up to 1,000 items: its record hashes in leaf order (so any record's inclusion proof can be rebuilt),
 * the signed tree head over their root, and once broadcast, the tree head's place in the anchor tree.
 */
export type ChunkState = 'sealed' | 'signed' | 'anchoring' | 'anchored' | 'failed';

export interface PatchBatchChunkDocument {
  _id: string;
  batchId: string;
  chunk: number;
  state: ChunkState;
  size: number;
  duplicates: number;
  recordHashes: string[];
  treeHead: TreeHead | null;
  treeHeadHash: string | null;
  issuerSignature: { signatureDerHex: string; pubKeyHex: string; keyIdentifier: string } | null;
  anchor: { txid: string; vout: number; proof: MerkleProof; blockHeight: number | null } | null;
  createdAt: Date;
  updatedAt: Date;
}

const batchSchema = new Schema<PatchBatchDocument>(
  {
    _id: { type: String, required: true },
    idempotencyKey: { type: String, required: true },
    bodyHash: { type: String, required: true },
    state: { type: String, required: true },
    itemCount: { type: Number, required: true },
    validCount: { type: Number, required: true },
    invalidCount: { type: Number, required: true },
    chunkCount: { type: Number, required: true },
    txid: { type: String, default: null },
    lastError: { type: String, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    timings: { type: Schema.Types.Mixed, default: {} },
    tenantId: { type: String, default: null },
    createdBy: { type: String, default: null },
    audit: { type: Schema.Types.Mixed, default: undefined },
  },
  { collection: 'patch_batches', versionKey: false, minimize: false },
);

const itemSchema = new Schema<PatchBatchItemDocument>(
  {
    _id: { type: String, required: true },
    batchId: { type: String, required: true },
    index: { type: Number, required: true },
    state: { type: String, required: true },
    uid: { type: String, default: null },
    requestJson: { type: String, default: null },
    requestHash: { type: String, default: null },
    unlockable: { type: Schema.Types.Mixed, default: null },
    error: { type: Schema.Types.Mixed, default: null },
    chunk: { type: Number, default: null },
  },
  { collection: 'patch_batch_items', versionKey: false, minimize: false },
);
// Equality lookups only: FerretDB answers those from an index, ranges and sorts it does in memory.
itemSchema.index({ batchId: 1, chunk: 1 });
itemSchema.index({ batchId: 1, state: 1 });

const chunkSchema = new Schema<PatchBatchChunkDocument>(
  {
    _id: { type: String, required: true },
    batchId: { type: String, required: true },
    chunk: { type: Number, required: true },
    state: { type: String, required: true },
    size: { type: Number, required: true },
    duplicates: { type: Number, required: true },
    recordHashes: { type: [String], required: true },
    treeHead: { type: Schema.Types.Mixed, default: null },
    treeHeadHash: { type: String, default: null },
    issuerSignature: { type: Schema.Types.Mixed, default: null },
    anchor: { type: Schema.Types.Mixed, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'patch_batch_chunks', versionKey: false, minimize: false },
);
chunkSchema.index({ batchId: 1 });

export function patchBatchModel(connection: Connection): Model<PatchBatchDocument> {
  return (
    (connection.models.PatchBatch as Model<PatchBatchDocument> | undefined) ??
    connection.model<PatchBatchDocument>('PatchBatch', batchSchema)
  );
}

export function patchBatchItemModel(connection: Connection): Model<PatchBatchItemDocument> {
  return (
    (connection.models.PatchBatchItem as Model<PatchBatchItemDocument> | undefined) ??
    connection.model<PatchBatchItemDocument>('PatchBatchItem', itemSchema)
  );
}

export function patchBatchChunkModel(connection: Connection): Model<PatchBatchChunkDocument> {
  return (
    (connection.models.PatchBatchChunk as Model<PatchBatchChunkDocument> | undefined) ??
    connection.model<PatchBatchChunkDocument>('PatchBatchChunk', chunkSchema)
  );
}

export function registerBulkRegistrationModels(connection: Connection): void {
  patchBatchModel(connection);
  patchBatchItemModel(connection);
  patchBatchChunkModel(connection);
}

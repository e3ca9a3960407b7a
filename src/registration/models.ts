import { Schema, type Connection, type Model } from 'mongoose';
import type { MerkleProof } from '../anchoring/merkle';
import type { AuditEntry } from '../tenancy/apiKeys';

export interface PatchHead {
  txid: string;
  recordHash: string;
  seq: number;
}

export type PatchStatus = 'pending' | 'anchoring' | 'anchored' | 'failed';

/** The patch head: one document per uid with its registration record, issuer signature, anchor and current owner. */
export interface PatchDocument {
  _id: string;
  registrationId: string;
  status: PatchStatus;
  /** sha256 of the request body as received, so a client retry with the same body is recognised. */
  requestHash: string;
  idempotencyKey: string | null;
  /** The canonical registration record (a RegistrationRecord), stored as signed. */
  record: Record<string, unknown>;
  recordHash: string;
  issuerSignature: { signatureDerHex: string; pubKeyHex: string; keyIdentifier: string } | null;
  /** `proof` leads from the record to the anchored root; null for a bulk record, whose proof its chunk holds. */
  anchor: { txid: string; vout: number; proof: MerkleProof | null; blockHeight: number | null } | null;
  owner: string;
  /** The record that made `owner` the owner: the registration (seq 0) once anchored, then each anchored transfer. */
  head: PatchHead | null;
  /**
   * The bulk batch that registered the patch (null for a single registration). Its issuer signature is over the
   * chunk's tree head and its inclusion proof is rebuilt from the chunk (src/bulkRegistration/proofs.ts).
   */
  batchId?: string | null;
  batchChunk?: number | null;
  lastError: string | null;
  /** The tenant (brand) that registered it; absent on records from before tenancy (the default tenant's). */
  tenantId?: string | null;
  /** The API key id that registered it. */
  createdBy?: string | null;
  /** Admin and write actions on the record, each with the acting key id. */
  audit?: AuditEntry[];
  createdAt: Date;
  updatedAt: Date;
}

const patchSchema = new Schema<PatchDocument>(
  {
    _id: { type: String, required: true },
    registrationId: { type: String, required: true },
    status: { type: String, required: true, enum: ['pending', 'anchoring', 'anchored', 'failed'] },
    requestHash: { type: String, required: true },
    idempotencyKey: { type: String, default: null },
    record: { type: Schema.Types.Mixed, required: true },
    recordHash: { type: String, required: true },
    issuerSignature: { type: Schema.Types.Mixed, default: null },
    anchor: { type: Schema.Types.Mixed, default: null },
    owner: { type: String, required: true },
    head: { type: Schema.Types.Mixed, default: null },
    batchId: { type: String, default: null },
    batchChunk: { type: Number, default: null },
    lastError: { type: String, default: null },
    tenantId: { type: String, default: null },
    createdBy: { type: String, default: null },
    audit: { type: Schema.Types.Mixed, default: undefined },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'patches', versionKey: false, minimize: false },
);
patchSchema.index({ status: 1, updatedAt: 1 });
patchSchema.index({ 'anchor.txid': 1 });
patchSchema.index({ batchId: 1, batchChunk: 1 });
// A tenant's patches in creation order: GET /v1/patches pages and GET /v1/exports/patches stream along it.
patchSchema.index({ tenantId: 1, createdAt: 1, _id: 1 });

export function patchModel(connection: Connection): Model<PatchDocument> {
  return (connection.models.Patch as Model<PatchDocument> | undefined) ?? connection.model<PatchDocument>('Patch', patchSchema);
}

/**
 * The record that made the current owner the owner. A bulk-registered patch keeps no head of its own until its
 * first transfer (its anchored state is written for a whole batch at once): its head is its registration.
 */
export function currentHead(patch: Pick<PatchDocument, 'head' | 'status' | 'anchor' | 'recordHash'>): PatchHead | null {
  if (patch.head) return patch.head;
  if (patch.status === 'anchored' && patch.anchor) return { txid: patch.anchor.txid, recordHash: patch.recordHash, seq: 0 };
  return null;
}

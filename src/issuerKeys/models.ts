import { Schema, type Connection, type Model } from 'mongoose';

/**
 * Revocations of issuer keys. One document per public key (the bundle's `pubKeyHex` is what a signature is checked
 * against; a key identifier is only a name for it). The effective time is the earliest any request asked for: a
 * revocation can be moved earlier, never later or undone. Every request is kept in `requests`, once per workflow run.
 */
export interface RevocationRequest {
  kid: string;
  /** The time this request asked for. */
  revokedAt: Date;
  reason: string;
  requestedBy: string;
  /** When the revocation workflow recorded it. */
  recordedAt: Date;
  workflowId: string;
  runId: string;
}

export interface IssuerKeyRevocationDocument {
  /** The revoked public key, compressed SEC1 hex. */
  _id: string;
  kid: string;
  /** Signatures made at or after this time are not the issuer's. */
  revokedAt: Date;
  /** The reason of the request that set `revokedAt`. */
  reason: string;
  requests: RevocationRequest[];
  updatedAt: Date;
}

const requestSchema = new Schema<RevocationRequest>(
  {
    kid: { type: String, required: true },
    revokedAt: { type: Date, required: true },
    reason: { type: String, required: true },
    requestedBy: { type: String, required: true },
    recordedAt: { type: Date, required: true },
    workflowId: { type: String, required: true },
    runId: { type: String, required: true },
  },
  { _id: false },
);

const revocationSchema = new Schema<IssuerKeyRevocationDocument>(
  {
    _id: { type: String, required: true },
    kid: { type: String, required: true },
    revokedAt: { type: Date, required: true },
    reason: { type: String, required: true },
    requests: { type: [requestSchema], default: [] },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'issuer_key_revocations', versionKey: false },
);

export function issuerKeyRevocationModel(connection: Connection): Model<IssuerKeyRevocationDocument> {
  return (
    (connection.models.IssuerKeyRevocation as Model<IssuerKeyRevocationDocument> | undefined) ??
    connection.model<IssuerKeyRevocationDocument>('IssuerKeyRevocation', revocationSchema)
  );
}

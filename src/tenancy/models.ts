import { Schema, type Connection, type Model } from 'mongoose';
import type { ApiKeyMode, ApiKeyScope } from './apiKeys';

/** One API key. The secret is never stored: only its SHA-256. Looked up by `_id` (the id inside the key). */
export interface ApiKeyDocument {
  _id: string;
  tenantId: string;
  name: string;
  mode: ApiKeyMode;
  secretHash: string;
  scopes: ApiKeyScope[];
  createdAt: Date;
  /** Who created it: a key id, or `cli:<user>`. */
  createdBy: string;
  /** Written at most once a minute per API process, not per request. */
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  revokedBy: string | null;
  /** Set on the old key of a rotation: the key that replaces it. */
  rotatedTo: string | null;
  rateLimitMax: number | null;
  registrationsPerDay: number | null;
}

const apiKeySchema = new Schema<ApiKeyDocument>(
  {
    _id: { type: String, required: true },
    tenantId: { type: String, required: true },
    name: { type: String, required: true },
    mode: { type: String, required: true, enum: ['live', 'test'] },
    secretHash: { type: String, required: true },
    scopes: { type: [String], required: true },
    createdAt: { type: Date, required: true },
    createdBy: { type: String, required: true },
    lastUsedAt: { type: Date, default: null },
    expiresAt: { type: Date, default: null },
    revokedAt: { type: Date, default: null },
    revokedBy: { type: String, default: null },
    rotatedTo: { type: String, default: null },
    rateLimitMax: { type: Number, default: null },
    registrationsPerDay: { type: Number, default: null },
  },
  { collection: 'api_keys', versionKey: false, minimize: false },
);
// Listing a tenant's keys (CLI and admin API).
apiKeySchema.index({ tenantId: 1 });

export function apiKeyModel(connection: Connection): Model<ApiKeyDocument> {
  return (connection.models.ApiKey as Model<ApiKeyDocument> | undefined) ?? connection.model<ApiKeyDocument>('ApiKey', apiKeySchema);
}

import type { Connection } from 'mongoose';
import { generateApiKey, type ApiKeyMode, type ApiKeyScope } from './apiKeys';
import { apiKeyModel, type ApiKeyDocument } from './models';

/** A key as listed: everything but its hash. */
export interface ApiKeyView {
  id: string;
  tenantId: string;
  name: string;
  mode: ApiKeyMode;
  scopes: ApiKeyScope[];
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedTo: string | null;
  rateLimitMax: number | null;
  registrationsPerDay: number | null;
  state: 'active' | 'expired' | 'revoked';
}

export function apiKeyView(doc: ApiKeyDocument, now = new Date()): ApiKeyView {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: doc._id,
    tenantId: doc.tenantId,
    name: doc.name,
    mode: doc.mode,
    scopes: doc.scopes,
    createdAt: doc.createdAt.toISOString(),
    createdBy: doc.createdBy,
    lastUsedAt: iso(doc.lastUsedAt),
    expiresAt: iso(doc.expiresAt),
    revokedAt: iso(doc.revokedAt),
    rotatedTo: doc.rotatedTo,
    rateLimitMax: doc.rateLimitMax,
    registrationsPerDay: doc.registrationsPerDay,
    state: doc.revokedAt ? 'revoked' : doc.expiresAt && doc.expiresAt <= now ? 'expired' : 'active',
  };
}

export interface NewApiKey {
  tenantId: string;
  name: string;
  scopes: ApiKeyScope[];
  mode: ApiKeyMode;
  createdBy: string;
  expiresAt?: Date | null;
  rateLimitMax?: number | null;
  registrationsPerDay?: number | null;
}

/** Creates a key. The returned `key` is the only time the secret exists outside the caller: show it once. */
export async function createApiKey(mongo: Connection, input: NewApiKey): Promise<{ key: string; view: ApiKeyView }> {
  const generated = generateApiKey(input.mode);
  const doc: ApiKeyDocument = {
    _id: generated.id,
    tenantId: input.tenantId,
    name: input.name,
    mode: input.mode,
    secretHash: generated.hash,
    scopes: [...new Set(input.scopes)],
    createdAt: new Date(),
    createdBy: input.createdBy,
    lastUsedAt: null,
    expiresAt: input.expiresAt ?? null,
    revokedAt: null,
    revokedBy: null,
    rotatedTo: null,
    rateLimitMax: input.rateLimitMax ?? null,
    registrationsPerDay: input.registrationsPerDay ?? null,
  };
  await apiKeyModel(mongo).create(doc);
  return { key: generated.key, view: apiKeyView(doc) };
}

/** A tenant's keys, or every key when `tenantId` is absent (the operator's view). */
export async function listApiKeys(mongo: Connection, tenantId?: string): Promise<ApiKeyView[]> {
  const docs = await apiKeyModel(mongo)
    .find(tenantId ? { tenantId } : {})
    .lean();
  const now = new Date();
  return docs.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map((d) => apiKeyView(d, now));
}

/** The key, when it exists and (given a tenant) belongs to it; another tenant's key is "not found". */
export async function findApiKey(mongo: Connection, id: string, tenantId?: string): Promise<ApiKeyDocument | null> {
  const doc = await apiKeyModel(mongo).findById(id).lean();
  return doc && (!tenantId || doc.tenantId === tenantId) ? doc : null;
}

/** Revokes a key at once (API processes stop accepting it within API_KEY_CACHE_MS). Revoking twice keeps the first time. */
export async function revokeApiKey(mongo: Connection, id: string, revokedBy: string, tenantId?: string): Promise<ApiKeyView | null> {
  if (!(await findApiKey(mongo, id, tenantId))) return null;
  await apiKeyModel(mongo).updateOne({ _id: id, revokedAt: null }, { $set: { revokedAt: new Date(), revokedBy } });
  const doc = await apiKeyModel(mongo).findById(id).lean();
  return doc && apiKeyView(doc);
}

/**
 * Rotation: a new key with the old one's tenant, scopes and limits; the old key keeps working for `overlapMs` (so
 * clients can switch without downtime), then expires. An earlier expiry of the old key is kept.
 */
export async function rotateApiKey(
  mongo: Connection,
  id: string,
  options: { overlapMs: number; createdBy: string; tenantId?: string },
): Promise<{ key: string; view: ApiKeyView; old: ApiKeyView } | null> {
  const old = await findApiKey(mongo, id, options.tenantId);
  if (!old || old.revokedAt) return null;
  const created = await createApiKey(mongo, {
    tenantId: old.tenantId,
    name: old.name,
    scopes: old.scopes,
    mode: old.mode,
    createdBy: options.createdBy,
    rateLimitMax: old.rateLimitMax,
    registrationsPerDay: old.registrationsPerDay,
  });
  const overlapEnd = new Date(Date.now() + options.overlapMs);
  const expiresAt = old.expiresAt && old.expiresAt < overlapEnd ? old.expiresAt : overlapEnd;
  await apiKeyModel(mongo).updateOne({ _id: id }, { $set: { expiresAt, rotatedTo: created.view.id } });
  const updated = (await apiKeyModel(mongo).findById(id).lean())!;
  return { ...created, old: apiKeyView(updated) };
}

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a key may do. `admin` implies every other scope within its tenant. */
export const API_KEY_SCOPES = ['patches:write', 'patches:read', 'batches:write', 'webhooks:manage', 'admin'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export type ApiKeyMode = 'live' | 'test';

/** The tenant the bootstrap API_KEY acts for, and the owner of records written before tenancy existed. */
export const DEFAULT_TENANT_ID = 'default';
/** The acting key id recorded for the bootstrap API_KEY (it has no stored document). */
export const BOOTSTRAP_KEY_ID = 'bootstrap';

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const API_KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

/**
 * `pp_<mode>_<id>_<secret>`: the id is the document's `_id` (one lookup by primary key), the secret 32 random bytes
 * in base64url (which may itself contain `_`, so the id has a fixed length).
 */
const KEY_FORMAT = /^pp_(live|test)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface ParsedApiKey {
  mode: ApiKeyMode;
  id: string;
}

export function parseApiKey(presented: string): ParsedApiKey | null {
  const match = KEY_FORMAT.exec(presented);
  return match ? { mode: match[1] as ApiKeyMode, id: match[2]! } : null;
}

/**
 * SHA-256, not bcrypt: the key carries 256 random bits, so no dictionary or brute force applies and a slow hash
 * would only cost CPU on every request (docs/SECURITY.md, "API keys").
 */
export function apiKeyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function apiKeyHashMatches(key: string, storedHash: string): boolean {
  const presented = Buffer.from(apiKeyHash(key), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

/** A new key: the secret to show once, and what is stored. */
export function generateApiKey(mode: ApiKeyMode): { id: string; key: string; hash: string } {
  const id = randomBytes(8).toString('hex');
  const key = `pp_${mode}_${id}_${randomBytes(32).toString('base64url')}`;
  return { id, key, hash: apiKeyHash(key) };
}

/** Who is calling: the tenant it acts for, the key (its id only, never the secret) and what it may do. */
export interface ApiPrincipal {
  tenantId: string;
  keyId: string;
  scopes: readonly ApiKeyScope[];
  /** Requests per rate window for this key; the configured default when null. */
  rateLimitMax: number | null;
  /** Registrations per UTC day for this key; the configured default when null. */
  registrationsPerDay: number | null;
}

export function hasScope(principal: Pick<ApiPrincipal, 'scopes'>, scope: ApiKeyScope): boolean {
  return principal.scopes.includes('admin') || principal.scopes.includes(scope);
}

/** The tenant a stored record belongs to: records from before tenancy belong to the default tenant. */
export function tenantOf(record: { tenantId?: string | null }): string {
  return record.tenantId ?? DEFAULT_TENANT_ID;
}

/** The acting key, as recorded in audit trails and workflow memos. */
export interface Actor {
  tenantId: string;
  keyId: string;
}

export function actorOf(principal: ApiPrincipal): Actor {
  return { tenantId: principal.tenantId, keyId: principal.keyId };
}

/** One entry of a record's audit trail: what was done and by which key. */
export interface AuditEntry {
  at: Date;
  action: string;
  keyId: string;
}

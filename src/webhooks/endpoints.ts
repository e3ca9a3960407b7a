import type { Connection } from 'mongoose';
import type { WebhookEventType } from './events';
import { newWebhookEndpointId } from './ids';
import { webhookDeliveryModel, webhookEndpointModel, type WebhookDeliveryDocument, type WebhookEndpointDocument } from './models';
import { newWebhookSecret } from './signature';

/** An endpoint as the API and the CLI show it: never a secret. */
export interface WebhookEndpointView {
  id: string;
  tenantId: string;
  url: string;
  events: WebhookEventType[];
  description: string;
  createdAt: string;
  createdBy: string;
  removedAt: string | null;
  /** Secrets that sign deliveries now: 2 during a rotation's overlap. */
  activeSecrets: number;
  /** When the previous secret stops signing, during a rotation's overlap. */
  previousSecretExpiresAt: string | null;
}

export interface WebhookDeliveryView {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: WebhookEventType;
  redeliveryOf: string | null;
  status: WebhookDeliveryDocument['status'];
  attempts: { attempt: number; at: string; statusCode: number | null; durationMs: number; errorClass: string | null }[];
  createdAt: string;
  updatedAt: string;
}

/** Secrets that sign now, newest first. */
export function signingSecrets(endpoint: Pick<WebhookEndpointDocument, 'secrets'>, now = new Date()): string[] {
  return endpoint.secrets.filter((s) => s.expiresAt === null || s.expiresAt > now).map((s) => s.secret);
}

export function endpointView(doc: WebhookEndpointDocument, now = new Date()): WebhookEndpointView {
  const previous = doc.secrets.find((s) => s.expiresAt !== null && s.expiresAt > now);
  return {
    id: doc._id,
    tenantId: doc.tenantId,
    url: doc.url,
    events: doc.events,
    description: doc.description,
    createdAt: doc.createdAt.toISOString(),
    createdBy: doc.createdBy,
    removedAt: doc.removedAt?.toISOString() ?? null,
    activeSecrets: signingSecrets(doc, now).length,
    previousSecretExpiresAt: previous?.expiresAt?.toISOString() ?? null,
  };
}

export function deliveryView(doc: WebhookDeliveryDocument): WebhookDeliveryView {
  return {
    id: doc._id,
    endpointId: doc.endpointId,
    eventId: doc.eventId,
    eventType: doc.eventType,
    redeliveryOf: doc.redeliveryOf,
    status: doc.status,
    // A delivery logged before its first attempt may have no attempts array yet.
    attempts: (doc.attempts ?? []).map((a) => ({
      attempt: a.attempt,
      at: a.at.toISOString(),
      statusCode: a.statusCode ?? null,
      durationMs: a.durationMs,
      errorClass: a.errorClass ?? null,
    })),
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
  };
}

/** Registers an endpoint (its URL already checked by the SSRF guard). The secret is in this answer only. */
export async function createWebhookEndpoint(
  mongo: Connection,
  input: { tenantId: string; url: string; events: WebhookEventType[]; description?: string; createdBy: string },
): Promise<{ secret: string; endpoint: WebhookEndpointView }> {
  const now = new Date();
  const secret = newWebhookSecret();
  const doc: WebhookEndpointDocument = {
    _id: newWebhookEndpointId(),
    tenantId: input.tenantId,
    url: input.url,
    events: [...new Set(input.events)],
    description: input.description ?? '',
    secrets: [{ secret, createdAt: now, expiresAt: null }],
    createdAt: now,
    createdBy: input.createdBy,
    removedAt: null,
    updatedAt: now,
  };
  await webhookEndpointModel(mongo).create(doc);
  return { secret, endpoint: endpointView(doc, now) };
}

/** A tenant's endpoints (removed ones too, marked); the operator (no tenant) sees every tenant's. */
export async function listWebhookEndpoints(mongo: Connection, tenantId: string | undefined): Promise<WebhookEndpointView[]> {
  const docs = await webhookEndpointModel(mongo)
    .find(tenantId === undefined ? {} : { tenantId })
    .lean();
  const now = new Date();
  return docs.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map((d) => endpointView(d, now));
}

/** An endpoint of this tenant; another tenant's is not found. `tenantId` undefined: the operator, any tenant. */
export async function findWebhookEndpoint(
  mongo: Connection,
  id: string,
  tenantId: string | undefined,
): Promise<WebhookEndpointDocument | null> {
  const doc = await webhookEndpointModel(mongo).findById(id).lean();
  if (!doc || (tenantId !== undefined && doc.tenantId !== tenantId)) return null;
  return doc;
}

/** Stops deliveries to an endpoint; its log stays. Pending attempts find it removed and stop. */
export async function removeWebhookEndpoint(
  mongo: Connection,
  id: string,
  tenantId: string | undefined,
): Promise<WebhookEndpointView | null> {
  const doc = await findWebhookEndpoint(mongo, id, tenantId);
  if (!doc) return null;
  const now = new Date();
  if (!doc.removedAt)
    await webhookEndpointModel(mongo).updateOne({ _id: id, removedAt: null }, { $set: { removedAt: now, updatedAt: now } });
  return endpointView({ ...doc, removedAt: doc.removedAt ?? now }, now);
}

/**
 * A new signing secret; the current one keeps signing for `overlapMs` (both signatures in every delivery), so the
 * receiver can switch without missing one. Secrets older than that are dropped.
 */
export async function rotateWebhookSecret(
  mongo: Connection,
  id: string,
  tenantId: string | undefined,
  overlapMs: number,
): Promise<{ secret: string; endpoint: WebhookEndpointView } | null> {
  const doc = await findWebhookEndpoint(mongo, id, tenantId);
  if (!doc || doc.removedAt) return null;
  const now = new Date();
  const secret = newWebhookSecret();
  const current = doc.secrets.find((s) => s.expiresAt === null);
  const secrets = [
    { secret, createdAt: now, expiresAt: null },
    ...(current && overlapMs > 0 ? [{ ...current, expiresAt: new Date(now.getTime() + overlapMs) }] : []),
  ];
  await webhookEndpointModel(mongo).updateOne({ _id: id }, { $set: { secrets, updatedAt: now } });
  return { secret, endpoint: endpointView({ ...doc, secrets, updatedAt: now }, now) };
}

/** An endpoint's delivery log, newest first. */
export async function listWebhookDeliveries(mongo: Connection, endpointId: string, limit: number): Promise<WebhookDeliveryView[]> {
  const docs = await webhookDeliveryModel(mongo).find({ endpointId }).sort({ createdAt: -1 }).limit(limit).lean();
  return docs.map(deliveryView);
}

/** One delivery of this tenant (another tenant's is not found). */
export async function findWebhookDelivery(
  mongo: Connection,
  id: string,
  tenantId: string | undefined,
): Promise<WebhookDeliveryDocument | null> {
  const doc = await webhookDeliveryModel(mongo).findById(id).lean();
  if (!doc || (tenantId !== undefined && doc.tenantId !== tenantId)) return null;
  return doc;
}

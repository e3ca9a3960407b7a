import { createHash } from 'node:crypto';

/** The events a tenant can subscribe an endpoint to. */
export const WEBHOOK_EVENT_TYPES = [
  'registration.anchored',
  'registration.failed',
  'batch.completed',
  'transfer.anchored',
  'key.revoked',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * What an event says. Identifiers, transaction ids, states and times only: no owner addresses, product data,
 * reasons written by people, keys or secrets.
 */
export type WebhookEventData =
  | { uid: string; txid: string; status: 'anchored' }
  | { uid: string; status: 'failed' }
  | { batchId: string; status: 'completed'; txid: string | null }
  | { transferId: string; uid: string; seq: number; txid: string; status: 'anchored' }
  | { keyId: string; status: 'revoked'; revokedAt: string };

/** The body every delivery of an event sends, byte for byte the same on each attempt and redelivery. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  tenantId: string;
  createdAt: string;
  data: WebhookEventData;
}

/**
 * An event's id from what it is about, so that emitting it again (an activity retry, a replayed step) names the same
 * event and so the same delivery. `subject` is the uid, batch id, transfer id or key id.
 */
export function webhookEventId(type: WebhookEventType, subject: string): string {
  return `evt_${createHash('sha256').update(`${type}\n${subject}`).digest('hex').slice(0, 32)}`;
}

export const WEBHOOK_EVENT_ID_PATTERN = /^evt_[0-9a-f]{32}$/;

import { randomBytes } from 'node:crypto';

export const WEBHOOK_ENDPOINT_ID_PATTERN = /^we_[0-9a-f]{16}$/;
export const WEBHOOK_DELIVERY_ID_PATTERN = /^webhook-(delivery|redelivery)-evt_[0-9a-f]{32}-we_[0-9a-f]{16}(-\d+)?$/;

export function newWebhookEndpointId(): string {
  return `we_${randomBytes(8).toString('hex')}`;
}

/** The one delivery of an event to an endpoint: a second emit of the event finds it started. */
export function webhookDeliveryWorkflowId(eventId: string, endpointId: string): string {
  return `webhook-delivery-${eventId}-${endpointId}`;
}

/** A manual redelivery: its own run, numbered by the time it was asked for. */
export function webhookRedeliveryWorkflowId(eventId: string, endpointId: string, requestedAtMs: number): string {
  return `webhook-redelivery-${eventId}-${endpointId}-${requestedAtMs}`;
}

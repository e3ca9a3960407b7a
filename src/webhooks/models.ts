import { Schema, type Connection, type Model } from 'mongoose';
import type { WebhookEventData, WebhookEventType } from './events';
import type { DeliveryErrorClass } from './post';

/** A signing secret. Stored as is (the HMAC needs it); never returned after creation, logged or passed to a workflow. */
export interface WebhookSecret {
  secret: string;
  createdAt: Date;
  /** Set on the previous secret by a rotation: it signs too until then. */
  expiresAt: Date | null;
}

export interface WebhookEndpointDocument {
  _id: string;
  tenantId: string;
  url: string;
  events: WebhookEventType[];
  description: string;
  secrets: WebhookSecret[];
  createdAt: Date;
  createdBy: string;
  /** Removed endpoints are kept (their delivery log stays readable) but receive nothing. */
  removedAt: Date | null;
  updatedAt: Date;
}

const endpointSchema = new Schema<WebhookEndpointDocument>(
  {
    _id: { type: String, required: true },
    tenantId: { type: String, required: true },
    url: { type: String, required: true },
    events: { type: [String], required: true },
    description: { type: String, default: '' },
    secrets: { type: [{ _id: false, secret: String, createdAt: Date, expiresAt: { type: Date, default: null } }], required: true },
    createdAt: { type: Date, required: true },
    createdBy: { type: String, required: true },
    removedAt: { type: Date, default: null },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'webhook_endpoints', versionKey: false, minimize: false },
);
// A tenant's endpoints: listing, and the emit's "who wants this event" (a handful per tenant).
endpointSchema.index({ tenantId: 1 });
// An emitting activity's first question: does any endpoint want this event type at all?
endpointSchema.index({ events: 1 });

/** An emitted event, kept so a redelivery sends the same body. */
export interface WebhookEventDocument {
  _id: string;
  tenantId: string;
  type: WebhookEventType;
  data: WebhookEventData;
  createdAt: Date;
}

const eventSchema = new Schema<WebhookEventDocument>(
  {
    _id: { type: String, required: true },
    tenantId: { type: String, required: true },
    type: { type: String, required: true },
    data: { type: Schema.Types.Mixed, required: true },
    createdAt: { type: Date, required: true },
  },
  { collection: 'webhook_events', versionKey: false, minimize: false },
);

export interface DeliveryAttempt {
  attempt: number;
  at: Date;
  statusCode: number | null;
  durationMs: number;
  errorClass: DeliveryErrorClass | null;
}

/** One delivery workflow's log: `_id` is its workflow id. No body, no secret, no receiver answer. */
export interface WebhookDeliveryDocument {
  _id: string;
  tenantId: string;
  endpointId: string;
  eventId: string;
  eventType: WebhookEventType;
  /** A manual redelivery names the delivery it repeats. */
  redeliveryOf: string | null;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: DeliveryAttempt[];
  createdAt: Date;
  updatedAt: Date;
}

const deliverySchema = new Schema<WebhookDeliveryDocument>(
  {
    _id: { type: String, required: true },
    tenantId: { type: String, required: true },
    endpointId: { type: String, required: true },
    eventId: { type: String, required: true },
    eventType: { type: String, required: true },
    redeliveryOf: { type: String, default: null },
    status: { type: String, required: true, enum: ['pending', 'succeeded', 'failed'] },
    attempts: {
      type: [{ _id: false, attempt: Number, at: Date, statusCode: Number, durationMs: Number, errorClass: String }],
      default: [],
    },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'webhook_deliveries', versionKey: false, minimize: false },
);
// An endpoint's delivery log (CLI and API), newest first.
deliverySchema.index({ endpointId: 1, createdAt: -1 });

export function webhookEndpointModel(connection: Connection): Model<WebhookEndpointDocument> {
  return (
    (connection.models.WebhookEndpoint as Model<WebhookEndpointDocument> | undefined) ??
    connection.model<WebhookEndpointDocument>('WebhookEndpoint', endpointSchema)
  );
}

export function webhookEventModel(connection: Connection): Model<WebhookEventDocument> {
  return (
    (connection.models.WebhookEvent as Model<WebhookEventDocument> | undefined) ??
    connection.model<WebhookEventDocument>('WebhookEvent', eventSchema)
  );
}

export function webhookDeliveryModel(connection: Connection): Model<WebhookDeliveryDocument> {
  return (
    (connection.models.WebhookDelivery as Model<WebhookDeliveryDocument> | undefined) ??
    connection.model<WebhookDeliveryDocument>('WebhookDelivery', deliverySchema)
  );
}

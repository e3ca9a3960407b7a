import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { TENANT_ID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import type { webhookDeliveryWorkflow } from '../../workflows/webhooks/delivery';
import type { WebhookRetryPolicy } from '../../workflows/webhooks/shared';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { webhookEventId, type WebhookEventData, type WebhookEventType } from './events';
import { webhookDeliveryWorkflowId, webhookRedeliveryWorkflowId } from './ids';
import { webhookEndpointModel, webhookEventModel, type WebhookEndpointDocument } from './models';

export interface WebhookLaunchDeps {
  mongo: Connection;
  temporal: Client;
  retry: WebhookRetryPolicy;
  starts?: StartCounter;
}

export interface EmittedEvent {
  tenantId: string;
  type: WebhookEventType;
  /** What the event is about (uid, batch id, transfer id, key id): with the type, it makes the event id. */
  subject: string;
  data: WebhookEventData;
}

function startDelivery(
  deps: WebhookLaunchDeps,
  endpoint: Pick<WebhookEndpointDocument, '_id' | 'tenantId'>,
  eventId: string,
  workflowId: string,
  redeliveryOf: string | null,
): Promise<LaunchResult> {
  return startOnce<typeof webhookDeliveryWorkflow>(
    deps.temporal,
    'webhookDeliveryWorkflow',
    {
      workflowId,
      taskQueue: TASK_QUEUES.main,
      args: [{ eventId, endpointId: endpoint._id, tenantId: endpoint.tenantId, redeliveryOf, retry: deps.retry }],
      typedSearchAttributes: [
        { key: WORKFLOW_KIND, value: 'webhook-delivery' },
        { key: WORKFLOW_STATUS, value: 'delivering' },
        { key: TENANT_ID, value: endpoint.tenantId },
      ],
    },
    deps.starts,
  );
}

/**
 * True when some tenant's endpoint wants this event type: the cheap check an emitting activity makes before it
 * reads anything else.
 */
export async function anyEndpointWants(mongo: Connection, type: WebhookEventType): Promise<boolean> {
  return (await webhookEndpointModel(mongo).exists({ events: type, removedAt: null })) !== null;
}

/**
 * Emits events: for each, the tenant's endpoints subscribed to its type get one delivery workflow each, started
 * once by id (an emit repeated by a retry is the same delivery). A tenant with no such endpoint costs one indexed
 * read and stores nothing. Answers the deliveries started or found.
 */
export async function emitWebhookEvents(deps: WebhookLaunchDeps, events: EmittedEvent[]): Promise<LaunchResult[]> {
  const endpointsOf = new Map<string, WebhookEndpointDocument[]>();
  const launched: LaunchResult[] = [];
  for (const event of events) {
    let endpoints = endpointsOf.get(event.tenantId);
    if (!endpoints) {
      endpoints = await webhookEndpointModel(deps.mongo).find({ tenantId: event.tenantId, removedAt: null }).lean();
      endpointsOf.set(event.tenantId, endpoints);
    }
    const wanting = endpoints.filter((e) => e.events.includes(event.type));
    if (wanting.length === 0) continue;
    const id = webhookEventId(event.type, event.subject);
    // The first emit's time and data stay: every delivery and redelivery sends the same body.
    await webhookEventModel(deps.mongo).updateOne(
      { _id: id },
      { $setOnInsert: { _id: id, tenantId: event.tenantId, type: event.type, data: event.data, createdAt: new Date() } },
      { upsert: true },
    );
    for (const endpoint of wanting)
      launched.push(await startDelivery(deps, endpoint, id, webhookDeliveryWorkflowId(id, endpoint._id), null));
  }
  return launched;
}

/** A manual redelivery of a stored event to one endpoint: a new delivery, logged on its own. */
export function startWebhookRedelivery(
  deps: WebhookLaunchDeps,
  endpoint: Pick<WebhookEndpointDocument, '_id' | 'tenantId'>,
  eventId: string,
  redeliveryOf: string,
  now = Date.now(),
): Promise<LaunchResult> {
  return startDelivery(deps, endpoint, eventId, webhookRedeliveryWorkflowId(eventId, endpoint._id, now), redeliveryOf);
}

/** What an emitting activity needs; without a Temporal client or the webhook settings it emits nothing. */
export interface WebhookEmitDeps {
  mongo: Connection;
  temporal?: Client;
  webhooks?: { retry: WebhookRetryPolicy };
}

/**
 * Emits from inside an activity, after its own write: one indexed read when no endpoint wants this type anywhere,
 * and `collect` (which may read the records the events are about) runs only when one does. Idempotent, so the
 * activity's retry emits again harmlessly.
 */
export async function emitFromActivity(
  deps: WebhookEmitDeps,
  type: WebhookEventType,
  collect: () => Promise<EmittedEvent[]> | EmittedEvent[],
): Promise<void> {
  if (!deps.temporal || !deps.webhooks) return;
  if (!(await anyEndpointWants(deps.mongo, type))) return;
  await emitWebhookEvents({ mongo: deps.mongo, temporal: deps.temporal, retry: deps.webhooks.retry }, await collect());
}

/**
 * `key.revoked` for the key's tenant. Revocation is not a workflow, so the API route and the CLI emit it after the
 * write; a failure to reach Temporal is reported to the caller's logger and does not undo the revocation.
 */
export async function emitKeyRevoked(
  deps: WebhookLaunchDeps,
  key: { tenantId: string; id: string; revokedAt: string | null },
  onError: (err: unknown) => void,
): Promise<void> {
  try {
    await emitWebhookEvents(deps, [
      {
        tenantId: key.tenantId,
        type: 'key.revoked',
        subject: key.id,
        data: { keyId: key.id, status: 'revoked', revokedAt: key.revokedAt ?? new Date().toISOString() },
      },
    ]);
  } catch (err) {
    onError(err);
  }
}

import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import type { AppConfig } from '../../src/config';
import { DomainError } from '../../src/errors';
import type { StartCounter } from '../../src/temporal/launch';
import {
  createWebhookEndpoint,
  findWebhookDelivery,
  findWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  removeWebhookEndpoint,
  rotateWebhookSecret,
} from '../../src/webhooks/endpoints';
import { WEBHOOK_EVENT_TYPES } from '../../src/webhooks/events';
import { WEBHOOK_DELIVERY_ID_PATTERN, WEBHOOK_ENDPOINT_ID_PATTERN } from '../../src/webhooks/ids';
import { startWebhookRedelivery } from '../../src/webhooks/launch';
import { systemResolver } from '../../src/webhooks/resolver';
import { resolveWebhookTarget, WebhookTargetRefused } from '../../src/webhooks/ssrfGuard';
import { principalOf } from '../middleware/apiKey';
import { defineRoute, type RouteSpec } from '../routing';

const EndpointSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    url: z.string(),
    events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
    description: z.string(),
    createdAt: z.string(),
    createdBy: z.string(),
    removedAt: z.string().nullable(),
    activeSecrets: z.number().int().describe('Secrets that sign each delivery now: 2 during a rotation overlap.'),
    previousSecretExpiresAt: z.string().nullable(),
  })
  .openapi('WebhookEndpoint');

const DeliverySchema = z
  .object({
    id: z.string(),
    endpointId: z.string(),
    eventId: z.string(),
    eventType: z.enum(WEBHOOK_EVENT_TYPES),
    redeliveryOf: z.string().nullable(),
    status: z.enum(['pending', 'succeeded', 'failed']),
    attempts: z.array(
      z.object({
        attempt: z.number().int(),
        at: z.string(),
        statusCode: z.number().int().nullable(),
        durationMs: z.number(),
        errorClass: z.string().nullable(),
      }),
    ),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('WebhookDelivery');

const SecretSchema = z.object({
  secret: z.string().describe('The signing secret (`whsec_…`): shown this once, never retrievable.'),
  endpoint: EndpointSchema,
});

const EndpointParams = z.object({ endpointId: z.string().regex(WEBHOOK_ENDPOINT_ID_PATTERN, 'an endpoint id (we_ and 16 hex digits)') });

export interface WebhookRouteDeps {
  mongo: Connection;
  temporal: Client;
  config: Pick<AppConfig, 'webhooks'>;
  starts?: StartCounter;
}

/**
 * Webhook endpoints of the caller's tenant (scope `webhooks:manage`). Every route acts on the key's own tenant: an
 * endpoint or delivery of another tenant answers 404. The CLI's `patchproof webhooks` does the same from a shell.
 */
export function webhookRoutes(deps: WebhookRouteDeps): RouteSpec[] {
  const policy = { allowLoopbackHttp: deps.config.webhooks.allowLoopbackHttp };
  const resolveHost = systemResolver(deps.config.webhooks.timeoutMs);
  const ownEndpoint = async (endpointId: string, tenantId: string) => {
    const endpoint = await findWebhookEndpoint(deps.mongo, endpointId, tenantId);
    if (!endpoint) throw new DomainError('NOT_FOUND', 'No such webhook endpoint.');
    return endpoint;
  };
  const common = { tags: ['Webhooks'], access: 'apiKey' as const, scope: 'webhooks:manage' as const, rateLimit: 'admin' as const };

  return [
    defineRoute({
      ...common,
      method: 'post',
      path: '/v1/webhooks',
      summary:
        'Register a webhook endpoint for events. The URL must be https and resolve only to public addresses. The signing secret is in this answer only.',
      request: {
        body: z
          .object({
            url: z.string().min(1).max(2048),
            events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1),
            description: z.string().max(200).optional(),
          })
          .strict(),
      },
      responses: {
        201: { description: 'The endpoint and its signing secret, shown once.', schema: SecretSchema },
        400: { description: 'VALIDATION_FAILED: the URL is refused (scheme, credentials, or a non-public address).' },
      },
      handler: async ({ body }, _req, res) => {
        const principal = principalOf(res);
        try {
          await resolveWebhookTarget(body.url, policy, resolveHost);
        } catch (err) {
          if (err instanceof WebhookTargetRefused)
            throw new DomainError('VALIDATION_FAILED', `The webhook URL is refused: ${err.message}.`);
          throw err;
        }
        const created = await createWebhookEndpoint(deps.mongo, {
          tenantId: principal.tenantId,
          url: body.url,
          events: body.events,
          ...(body.description && { description: body.description }),
          createdBy: principal.keyId,
        });
        res.setHeader('Cache-Control', 'no-store');
        res.status(201).json(created);
      },
    }),
    defineRoute({
      ...common,
      method: 'get',
      path: '/v1/webhooks',
      summary: "The caller's tenant's webhook endpoints (removed ones too). Never a secret.",
      responses: { 200: { description: 'The endpoints.', schema: z.object({ endpoints: z.array(EndpointSchema) }) } },
      handler: async (_input, _req, res) => {
        res.json({ endpoints: await listWebhookEndpoints(deps.mongo, principalOf(res).tenantId) });
      },
    }),
    defineRoute({
      ...common,
      method: 'delete',
      path: '/v1/webhooks/:endpointId',
      summary: 'Remove a webhook endpoint: it receives nothing more, pending attempts stop; its delivery log stays.',
      request: { params: EndpointParams },
      responses: {
        200: { description: 'The removed endpoint.', schema: EndpointSchema },
        404: { description: 'No such endpoint in this tenant.' },
      },
      handler: async ({ params }, _req, res) => {
        const removed = await removeWebhookEndpoint(deps.mongo, params.endpointId, principalOf(res).tenantId);
        if (!removed) throw new DomainError('NOT_FOUND', 'No such webhook endpoint.');
        res.json(removed);
      },
    }),
    defineRoute({
      ...common,
      method: 'post',
      path: '/v1/webhooks/:endpointId/rotate-secret',
      summary:
        'A new signing secret; the previous one keeps signing (a second v1 signature) for WEBHOOK_SECRET_OVERLAP_HOURS (24 by default).',
      request: { params: EndpointParams },
      responses: {
        201: { description: 'The new secret, shown once.', schema: SecretSchema },
        404: { description: 'No such active endpoint.' },
      },
      handler: async ({ params }, _req, res) => {
        const rotated = await rotateWebhookSecret(
          deps.mongo,
          params.endpointId,
          principalOf(res).tenantId,
          deps.config.webhooks.secretOverlapMs,
        );
        if (!rotated) throw new DomainError('NOT_FOUND', 'No such webhook endpoint.');
        res.setHeader('Cache-Control', 'no-store');
        res.status(201).json(rotated);
      },
    }),
    defineRoute({
      ...common,
      method: 'get',
      path: '/v1/webhooks/:endpointId/deliveries',
      summary: "An endpoint's delivery log, newest first: attempts, status codes, durations, error classes.",
      request: {
        params: EndpointParams,
        query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }).strict(),
      },
      responses: {
        200: { description: 'The deliveries.', schema: z.object({ deliveries: z.array(DeliverySchema) }) },
        404: { description: 'No such endpoint in this tenant.' },
      },
      handler: async ({ params, query }, _req, res) => {
        await ownEndpoint(params.endpointId, principalOf(res).tenantId);
        res.json({ deliveries: await listWebhookDeliveries(deps.mongo, params.endpointId, query.limit) });
      },
    }),
    defineRoute({
      ...common,
      method: 'post',
      path: '/v1/webhooks/:endpointId/deliveries/:deliveryId/redeliver',
      summary: 'Send a delivered or failed event again to its endpoint: a new delivery with its own log entry and retries.',
      request: {
        params: EndpointParams.extend({ deliveryId: z.string().regex(WEBHOOK_DELIVERY_ID_PATTERN, 'a delivery id') }),
      },
      responses: {
        202: { description: 'The redelivery started.', schema: z.object({ deliveryId: z.string(), redeliveryOf: z.string() }) },
        404: { description: 'No such endpoint or delivery in this tenant.' },
      },
      handler: async ({ params }, _req, res) => {
        const tenantId = principalOf(res).tenantId;
        const endpoint = await ownEndpoint(params.endpointId, tenantId);
        const delivery = await findWebhookDelivery(deps.mongo, params.deliveryId, tenantId);
        if (!delivery || delivery.endpointId !== endpoint._id) throw new DomainError('NOT_FOUND', 'No such webhook delivery.');
        if (endpoint.removedAt) throw new DomainError('CONFLICT', 'The endpoint was removed.');
        const started = await startWebhookRedelivery(
          { mongo: deps.mongo, temporal: deps.temporal, retry: deps.config.webhooks.retry, ...(deps.starts && { starts: deps.starts }) },
          endpoint,
          delivery.eventId,
          delivery._id,
        );
        res.status(202).json({ deliveryId: started.workflowId, redeliveryOf: delivery._id });
      },
    }),
  ];
}

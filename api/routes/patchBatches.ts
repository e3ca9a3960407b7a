import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { BATCH_ID_PATTERN, MAX_BATCH_ITEMS } from '../../src/bulkRegistration/ids';
import { BatchKeyConflictError, submitBatch, type ValidatedItem } from '../../src/bulkRegistration/intake';
import { getBatchView, ITEM_OUTCOMES, listBatchItems } from '../../src/bulkRegistration/view';
import type { Network } from '../../src/chain/addresses';
import { DomainError } from '../../src/errors';
import type { Metrics } from '../../src/metrics';
import type { RegistrationQueue } from '../../src/registration/queue';
import { bulkItemsBody, NDJSON } from '../middleware/bulkBody';
import { zodDetails } from '../errors';
import { defineRoute, type RouteSpec } from '../routing';
import type { Redis } from 'ioredis';
import { actorOf } from '../../src/tenancy/apiKeys';
import { registrationQuota } from '../../src/tenancy/quota';
import { principalOf } from '../middleware/apiKey';
import { idempotencyKeyHeader, idempotencyKeyOf, registrationBodySchema } from './patches';

export interface PatchBatchRouteDeps {
  temporal: Client;
  mongo: Connection;
  metrics: Metrics;
  network: Network;
  unlockContentSecret: string;
  batchBodyLimit: string;
  /** BATCH_MAX_ITEMS: the most items one batch may hold. */
  batchMaxItems?: number;
  /** BATCH_MAX_CONCURRENT: batch bodies this process reads and checks at once. */
  batchMaxConcurrent?: number;
  queue?: RegistrationQueue;
  /** Where the per-key registrations/day quota is counted, and its default (API_KEY_REGISTRATIONS_PER_DAY). */
  redis: Redis;
  registrationsPerDay: number;
}

const ItemErrorSchema = z.object({
  code: z.enum(['VALIDATION_FAILED', 'DUPLICATE']),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  registrationId: z.string().optional(),
});

const BatchAcceptedSchema = z
  .object({
    batchId: z.string(),
    statusUrl: z.string(),
    itemsUrl: z.string(),
    itemCount: z.number().int(),
    accepted: z.number().int().describe('Items that will be registered unless their uid turns out to be registered already.'),
    rejected: z
      .array(z.object({ index: z.number().int(), error: ItemErrorSchema }))
      .describe('Invalid items, and uids repeated in the batch.'),
  })
  .openapi('PatchBatchAccepted');

const OutcomeSchema = z.enum(ITEM_OUTCOMES);

const BatchSchema = z
  .object({
    batchId: z.string(),
    workflowId: z.string(),
    state: z.enum(['receiving', 'accepted', 'registering', 'anchoring', 'completed', 'failed']),
    itemCount: z.number().int(),
    counts: z.record(OutcomeSchema, z.number().int()),
    txids: z.array(z.string()),
    timings: z.record(z.string(), z.string()),
    lastError: z.string().optional(),
  })
  .openapi('PatchBatch');

const BatchItemsSchema = z
  .object({
    items: z.array(
      z.object({
        index: z.number().int(),
        uid: z.string().nullable(),
        state: OutcomeSchema,
        registrationId: z.string().optional(),
        txid: z.string().optional(),
        proofUrl: z.string().optional(),
        error: ItemErrorSchema.optional(),
      }),
    ),
    nextCursor: z.number().int().nullable(),
  })
  .openapi('PatchBatchItems');

const batchUrl = (batchId: string) => `/v1/patch-batches/${batchId}`;
const BatchIdParams = z.object({ batchId: z.string().regex(BATCH_ID_PATTERN, 'a batch id (pb-…)') });

/** Bulk registration: POST /v1/patch-batches starts a BulkRegistrationWorkflow; the GETs read its outcome. */
export function patchBatchRoutes(deps: PatchBatchRouteDeps): RouteSpec[] {
  const itemSchema = registrationBodySchema(deps.network);
  const maxItems = deps.batchMaxItems ?? MAX_BATCH_ITEMS;
  return [
    defineRoute({
      method: 'post',
      path: '/v1/patch-batches',
      summary:
        'Register up to 10,000 patches at once (a JSON array, or NDJSON). Requires an Idempotency-Key; each item is checked like POST /v1/patches, and invalid items are reported by index without blocking the others.',
      tags: ['Registration'],
      access: 'apiKey',
      scope: 'batches:write',
      rateLimit: 'admin',
      request: { headers: idempotencyKeyHeader(true) },
      ownBody: {
        parser: bulkItemsBody({ limit: deps.batchBodyLimit, maxItems, maxConcurrent: deps.batchMaxConcurrent ?? 2 }),
        schema: z.array(itemSchema).min(1).max(maxItems),
        contentTypes: ['application/json', NDJSON],
      },
      responses: {
        202: {
          description: 'Accepted; follow statusUrl. The same Idempotency-Key and items again get the same batch.',
          schema: BatchAcceptedSchema,
        },
        409: { description: 'The Idempotency-Key was used for a batch with different items.' },
        413: { description: 'More than 10,000 items, or a body over BATCH_BODY_LIMIT.' },
        415: { description: 'Neither application/json nor application/x-ndjson.' },
        429: { description: 'BATCH_MAX_CONCURRENT batches are being read by this API process; see Retry-After.' },
        503: {
          description: 'QUEUE_FULL: this batch would pass REGISTRATION_QUEUE_LIMIT registrations waiting to be anchored; see Retry-After.',
        },
      },
      handler: async (_input, req, res) => {
        const idempotencyKey = idempotencyKeyOf(req);
        const principal = principalOf(res);
        if (!idempotencyKey) throw new DomainError('VALIDATION_FAILED', 'POST /v1/patch-batches requires an Idempotency-Key header.');
        const raw = req.body as unknown[];
        const items = raw.map((item): ValidatedItem => {
          const parsed = itemSchema.safeParse(item);
          if (!parsed.success) return { ok: false, issues: zodDetails(parsed.error) };
          const { unlockable, ...request } = parsed.data;
          return { ok: true, request, ...(unlockable && { unlockable }) };
        });
        const bodyHash = createHash('sha256').update(JSON.stringify(raw)).digest('hex');
        const accepted = await submitBatch(
          {
            temporal: deps.temporal,
            mongo: deps.mongo,
            starts: deps.metrics,
            unlockContentSecret: deps.unlockContentSecret,
            ...(deps.queue && { queue: deps.queue }),
            quota: registrationQuota(deps.redis, principal, deps.registrationsPerDay),
          },
          { idempotencyKey, bodyHash, items, actor: actorOf(principal) },
        ).catch((err: unknown) => {
          if (!(err instanceof BatchKeyConflictError)) throw err;
          throw new DomainError('CONFLICT', err.message, { batchId: err.batchId, statusUrl: batchUrl(err.batchId) });
        });
        res
          .status(202)
          .location(batchUrl(accepted.batchId))
          .json({
            batchId: accepted.batchId,
            statusUrl: batchUrl(accepted.batchId),
            itemsUrl: `${batchUrl(accepted.batchId)}/items`,
            itemCount: accepted.itemCount,
            accepted: accepted.accepted,
            rejected: accepted.rejected,
          });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/patch-batches/:batchId',
      summary: "A batch's counts per outcome (accepted, duplicate, invalid, anchoring, anchored, failed), txids and timings.",
      tags: ['Registration'],
      access: 'apiKey',
      scope: 'patches:read',
      rateLimit: 'admin',
      request: { params: BatchIdParams },
      responses: { 200: { description: 'The batch.', schema: BatchSchema }, 404: { description: 'No such batch.' } },
      handler: async ({ params }, _req, res) => {
        const view = await getBatchView(deps.mongo, params.batchId, principalOf(res).tenantId);
        if (!view) throw new DomainError('NOT_FOUND', 'No such batch.');
        res.setHeader('Cache-Control', 'no-store');
        res.json(view);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/patch-batches/:batchId/items',
      summary:
        "A page of a batch's per-item outcomes in submission order, with registrationId, txid and proof link; `cursor` is the previous page's nextCursor.",
      tags: ['Registration'],
      access: 'apiKey',
      scope: 'patches:read',
      rateLimit: 'admin',
      request: {
        params: BatchIdParams,
        query: z
          .object({
            state: OutcomeSchema.optional(),
            cursor: z.coerce.number().int().min(0).max(MAX_BATCH_ITEMS).optional(),
            limit: z.coerce.number().int().min(1).max(1000).default(100),
          })
          .strict(),
      },
      responses: { 200: { description: 'The page.', schema: BatchItemsSchema }, 404: { description: 'No such batch.' } },
      handler: async ({ params, query }, _req, res) => {
        const page = await listBatchItems(deps.mongo, params.batchId, {
          tenantId: principalOf(res).tenantId,
          limit: query.limit,
          ...(query.state && { state: query.state }),
          ...(query.cursor !== undefined && { cursor: query.cursor }),
        });
        if (!page) throw new DomainError('NOT_FOUND', 'No such batch.');
        res.setHeader('Cache-Control', 'no-store');
        res.json(page);
      },
    }),
  ];
}

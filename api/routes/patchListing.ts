import { pipeline } from 'node:stream/promises';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { DomainError } from '../../src/errors';
import type { Logger } from '../../src/logging/logger';
import { exportPatches, listPatches, type PatchListFilter } from '../../src/registration/listing';
import { principalOf } from '../middleware/apiKey';
import { defineRoute, type RouteSpec } from '../routing';

const PATCH_STATUSES = ['pending', 'anchoring', 'anchored', 'failed'] as const;

const PatchListItemSchema = z
  .object({
    uid: z.string(),
    registrationId: z.string(),
    status: z.enum(PATCH_STATUSES),
    owner: z.string(),
    product: z.record(z.string(), z.unknown()),
    recordHash: z.string(),
    txid: z.string().nullable(),
    blockHeight: z.number().int().nullable(),
    batchId: z.string().nullable(),
    createdBy: z.string().nullable().describe('The id of the API key that registered it (never the key itself).'),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('PatchListItem');

const PatchListSchema = z
  .object({
    items: z.array(PatchListItemSchema),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null after the last page.'),
  })
  .openapi('PatchList');

const filterQuery = {
  status: z.enum(PATCH_STATUSES).optional(),
  createdFrom: z.iso.datetime({ offset: true }).optional().describe('Created at or after (ISO 8601).'),
  createdTo: z.iso.datetime({ offset: true }).optional().describe('Created before (ISO 8601).'),
};

function filterOf(
  tenantId: string,
  query: { status?: PatchListFilter['status']; createdFrom?: string; createdTo?: string },
): PatchListFilter {
  return {
    tenantId,
    ...(query.status && { status: query.status }),
    ...(query.createdFrom && { createdFrom: new Date(query.createdFrom) }),
    ...(query.createdTo && { createdTo: new Date(query.createdTo) }),
  };
}

/** What a client refused for a full export slot waits before it tries again. */
const EXPORT_RETRY_AFTER_SECONDS = 10;

/** A tenant's own patches: paged (GET /v1/patches) and whole, streamed (GET /v1/exports/patches). */
export function patchListingRoutes(deps: {
  mongo: Connection;
  /** Where exports read (AppDeps.streamingMongo). */
  streamingMongo: Connection;
  logger: Logger;
  maxConcurrentExports: number;
}): RouteSpec[] {
  let exportsRunning = 0;
  return [
    defineRoute({
      method: 'get',
      path: '/v1/patches',
      summary:
        "The caller's tenant's patches, oldest first, in pages: `cursor` is the previous page's nextCursor (opaque). Patches registered while paging appear once, at their own place.",
      tags: ['Registration'],
      access: 'apiKey',
      scope: 'patches:read',
      rateLimit: 'admin',
      request: {
        query: z
          .object({
            ...filterQuery,
            cursor: z.string().max(400).optional(),
            limit: z.coerce.number().int().min(1).max(1000).default(100),
          })
          .strict(),
      },
      responses: { 200: { description: 'A page.', schema: PatchListSchema } },
      handler: async ({ query }, _req, res) => {
        const page = await listPatches(deps.mongo, filterOf(principalOf(res).tenantId, query), {
          limit: query.limit,
          ...(query.cursor && { cursor: query.cursor }),
        });
        res.setHeader('Cache-Control', 'no-store');
        res.json(page);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/exports/patches',
      summary:
        "Every patch of the caller's tenant, streamed oldest first as NDJSON (one PatchListItem per line) or CSV (with a header row). Memory stays constant whatever the size.",
      tags: ['Registration'],
      access: 'apiKey',
      scope: 'patches:read',
      rateLimit: 'admin',
      request: { query: z.object({ ...filterQuery, format: z.enum(['ndjson', 'csv']).default('ndjson') }).strict() },
      responses: {
        200: {
          description:
            'The export; `Content-Disposition: attachment`. An error after the first byte ends the stream early (check the line count).',
          contentType: 'application/x-ndjson',
          schema: z.string(),
        },
        429: { description: 'EXPORT_MAX_CONCURRENT exports already stream from this API process; see Retry-After.' },
      },
      handler: async ({ query }, req, res) => {
        const principal = principalOf(res);
        // Each export holds a cursor (on FerretDB, a pooled connection) for as long as its client reads.
        if (exportsRunning >= deps.maxConcurrentExports) {
          throw new DomainError('RATE_LIMITED', 'Too many exports are running; retry later.', {
            retryAfterSeconds: EXPORT_RETRY_AFTER_SECONDS,
          });
        }
        exportsRunning += 1;
        res.once('close', () => (exportsRunning -= 1));
        const stages = exportPatches(deps.streamingMongo, filterOf(principal.tenantId, query), query.format);
        res.setHeader('Content-Type', query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
        res.setHeader('Content-Disposition', `attachment; filename="patches-${principal.tenantId}.${query.format}"`);
        res.setHeader('Cache-Control', 'no-store');
        try {
          await pipeline([...stages, res]);
        } catch (err) {
          // Past the headers the only signal left is the cut stream; a client that left is not an error.
          if (!req.destroyed) deps.logger.warn('patch export ended early', { tenantId: principal.tenantId, err });
          res.destroy();
        }
      },
    }),
  ];
}

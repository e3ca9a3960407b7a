import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { DomainError } from '../../src/errors';
import { API_KEY_ID_PATTERN, API_KEY_SCOPES, TENANT_ID_PATTERN, type ApiPrincipal } from '../../src/tenancy/apiKeys';
import { createApiKey, listApiKeys, revokeApiKey, rotateApiKey } from '../../src/tenancy/keyStore';
import { isOperator, principalOf, type ApiKeyAuthenticator } from '../middleware/apiKey';
import { defineRoute, type RouteSpec } from '../routing';
import type { Logger } from '../../src/logging/logger';
import { emitKeyRevoked } from '../../src/webhooks/launch';
import type { WebhookRetryPolicy } from '../../workflows/webhooks/shared';

const ApiKeySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    mode: z.enum(['live', 'test']),
    scopes: z.array(z.enum(API_KEY_SCOPES)),
    createdAt: z.string(),
    createdBy: z.string(),
    lastUsedAt: z.string().nullable().describe('Updated at most once a minute per API process.'),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    rotatedTo: z.string().nullable(),
    rateLimitMax: z.number().int().nullable(),
    registrationsPerDay: z.number().int().nullable(),
    state: z.enum(['active', 'expired', 'revoked']),
  })
  .openapi('ApiKey');

const NewKeySchema = z
  .object({
    key: z.string().describe('The secret key: shown this once, never stored or retrievable.'),
    apiKey: ApiKeySchema,
  })
  .openapi('NewApiKey');

const KeyParams = z.object({ keyId: z.string().regex(API_KEY_ID_PATTERN, 'a key id (16 hex digits)') });

/**
 * The tenant an admin request acts on: its own, or for the operator (default-tenant admin) the one it names. A
 * brand's admin naming another tenant is told it does not exist.
 */
function tenantActedOn(principal: ApiPrincipal, named: string | undefined): string | undefined {
  if (isOperator(principal)) return named;
  if (named !== undefined && named !== principal.tenantId) throw new DomainError('NOT_FOUND', 'No such tenant.');
  return principal.tenantId;
}

export interface ApiKeyRouteDeps {
  mongo: Connection;
  authenticator: Pick<ApiKeyAuthenticator, 'forget'>;
  rotationOverlapMs: number;
  /** For the `key.revoked` webhook event. */
  temporal: Client;
  webhookRetry: WebhookRetryPolicy;
  logger: Logger;
}

/** API key lifecycle over HTTP (admin scope); the CLI's `patchproof api-keys` does the same from a shell. */
export function apiKeyRoutes(deps: ApiKeyRouteDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/admin/api-keys',
      summary: "Create an API key for the caller's tenant (the operator may name any tenant). The key is in this answer only.",
      tags: ['API keys'],
      access: 'apiKey',
      scope: 'admin',
      rateLimit: 'admin',
      request: {
        body: z
          .object({
            tenantId: z.string().regex(TENANT_ID_PATTERN, 'lower-case letters, digits and -').optional(),
            name: z.string().trim().min(1).max(100),
            scopes: z.array(z.enum(API_KEY_SCOPES)).min(1),
            mode: z.enum(['live', 'test']).default('live'),
            expiresAt: z.iso.datetime({ offset: true }).optional(),
            rateLimitMax: z.number().int().positive().optional(),
            registrationsPerDay: z.number().int().positive().optional(),
          })
          .strict(),
      },
      responses: { 201: { description: 'The new key, shown once.', schema: NewKeySchema } },
      handler: async ({ body }, _req, res) => {
        const principal = principalOf(res);
        const created = await createApiKey(deps.mongo, {
          tenantId: tenantActedOn(principal, body.tenantId) ?? principal.tenantId,
          name: body.name,
          scopes: body.scopes,
          mode: body.mode,
          createdBy: principal.keyId,
          ...(body.expiresAt && { expiresAt: new Date(body.expiresAt) }),
          ...(body.rateLimitMax && { rateLimitMax: body.rateLimitMax }),
          ...(body.registrationsPerDay && { registrationsPerDay: body.registrationsPerDay }),
        });
        res.setHeader('Cache-Control', 'no-store');
        res.status(201).json({ key: created.key, apiKey: created.view });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/admin/api-keys',
      summary: "The caller's tenant's API keys (the operator: every tenant's, or `tenantId`'s). Never a secret or its hash.",
      tags: ['API keys'],
      access: 'apiKey',
      scope: 'admin',
      rateLimit: 'admin',
      request: { query: z.object({ tenantId: z.string().regex(TENANT_ID_PATTERN).optional() }).strict() },
      responses: { 200: { description: 'The keys.', schema: z.object({ apiKeys: z.array(ApiKeySchema) }) } },
      handler: async ({ query }, _req, res) => {
        const apiKeys = await listApiKeys(deps.mongo, tenantActedOn(principalOf(res), query.tenantId));
        res.setHeader('Cache-Control', 'no-store');
        res.json({ apiKeys });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/api-keys/:keyId/revoke',
      summary: 'Revoke an API key: every API process refuses it within API_KEY_CACHE_MS (2 s by default).',
      tags: ['API keys'],
      access: 'apiKey',
      scope: 'admin',
      rateLimit: 'admin',
      request: { params: KeyParams },
      responses: { 200: { description: 'The revoked key.', schema: ApiKeySchema }, 404: { description: 'No such key in this tenant.' } },
      handler: async ({ params }, _req, res) => {
        const principal = principalOf(res);
        const revoked = await revokeApiKey(deps.mongo, params.keyId, principal.keyId, tenantActedOn(principal, undefined));
        if (!revoked) throw new DomainError('NOT_FOUND', 'No such API key.');
        deps.authenticator.forget(params.keyId);
        await emitKeyRevoked({ mongo: deps.mongo, temporal: deps.temporal, retry: deps.webhookRetry }, revoked, (err) =>
          deps.logger.warn('key.revoked webhook not emitted', { keyId: revoked.id, err }),
        );
        res.json(revoked);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/api-keys/:keyId/rotate',
      summary:
        'Rotate an API key: a new key with the same tenant, scopes and limits; the old one keeps working for `overlapHours` (API_KEY_ROTATION_OVERLAP_HOURS, 24 by default), then expires.',
      tags: ['API keys'],
      access: 'apiKey',
      scope: 'admin',
      rateLimit: 'admin',
      request: {
        params: KeyParams,
        body: z
          .object({
            overlapHours: z
              .number()
              .min(0)
              .max(24 * 30)
              .optional(),
          })
          .strict()
          .optional(),
      },
      responses: {
        201: {
          description: 'The new key (shown once) and the old key with its new expiry.',
          schema: z.object({ key: z.string(), apiKey: ApiKeySchema, previous: ApiKeySchema }),
        },
        404: { description: 'No such active key in this tenant.' },
      },
      handler: async ({ params, body }, _req, res) => {
        const principal = principalOf(res);
        const rotated = await rotateApiKey(deps.mongo, params.keyId, {
          overlapMs: body?.overlapHours !== undefined ? body.overlapHours * 3_600_000 : deps.rotationOverlapMs,
          createdBy: principal.keyId,
          ...(tenantActedOn(principal, undefined) && { tenantId: principal.tenantId }),
        });
        if (!rotated) throw new DomainError('NOT_FOUND', 'No such active API key.');
        deps.authenticator.forget(params.keyId);
        res.setHeader('Cache-Control', 'no-store');
        res.status(201).json({ key: rotated.key, apiKey: rotated.view, previous: rotated.old });
      },
    }),
  ];
}

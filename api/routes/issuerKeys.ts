import { sendCacheableJson } from '../cacheable';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { AppConfig } from '../../src/config';
import { IssuerKeyDirectorySchema, loadKeyDirectory } from '../../src/issuerKeys/directory';
import { KEY_DIRECTORY_PATH } from '../../src/issuerKeys/ids';
import {
  getIssuerKeyRevocationStatus,
  issuerKeyRevocationInput,
  revocationTimeProblem,
  revokeIssuerKey,
  type IssuerKeyRevocationStatus,
} from '../../src/issuerKeys/launch';
import { DomainError } from '../../src/errors';
import type { KmsClient } from '../../src/kms/client';
import type { Metrics } from '../../src/metrics';
import { KEY_IDENTIFIER_PATTERN } from '../../src/rotation/ids';
import type { Keyring } from '../../src/rotation/keyring';
import { ISSUER_KEY_FAILURES } from '../../workflows/issuerKeys/shared';
import { defineRoute, type RouteSpec } from '../routing';

export interface IssuerKeyRouteDeps {
  temporal: Client;
  metrics: Metrics;
  config: AppConfig;
  keys: Keyring;
  kms: KmsClient;
}

/**
 * How long a cache may serve the directory. A revocation reaches verifiers that fetch it within this time (plus our
 * own KEY_SETTINGS_CACHE_MS), so it stays short; no stale-while-revalidate, which would stretch it further.
 */
const DIRECTORY_MAX_AGE_SEC = 300;
/** How long POST …/revoke waits for the workflow before answering 202 (it waits out the key settings cache). */
const REVOKE_WAIT_MS = 20_000;

const Kid = z.string().regex(KEY_IDENTIFIER_PATTERN, 'a KMS key identifier: name or name@version');
const Operator = z
  .string()
  .regex(/^[A-Za-z0-9._@:-]{1,80}$/, 'an operator handle: 1–80 characters of A–Z, a–z, 0–9, . _ @ : -')
  .openapi({ description: 'Who revokes; recorded in the history, the memo and the store. Defaults to `api`.' });

const ReportSchema = z
  .object({
    kid: z.string(),
    publicKey: z.string(),
    revokedAt: z.string().describe('The effective revocation time: the earliest any request asked for.'),
    reason: z.string(),
    changed: z.boolean().describe('False: the key was already revoked at or before the time asked for.'),
    requestedBy: z.string(),
    requestedRevokedAt: z.string(),
    signingKeyRevoked: z.boolean().describe('The key was signing (or staged to) and was revoked with `force`.'),
  })
  .openapi('IssuerKeyRevocationReport');
const RevokedSchema = ReportSchema.extend({ workflowId: z.string(), runId: z.string(), alreadyStarted: z.boolean() }).openapi(
  'IssuerKeyRevoked',
);
const RunningSchema = z.object({ workflowId: z.string(), runId: z.string(), statusUrl: z.string() }).openapi('IssuerKeyRevocationRunning');
const StatusSchema = z
  .object({
    state: z.enum(['running', 'completed', 'failed']),
    workflowId: z.string(),
    runId: z.string(),
    status: ReportSchema.nullable().optional(),
    reason: z.string().optional(),
    failureType: z.string().optional(),
  })
  .openapi('IssuerKeyRevocationStatus');

const statusUrlOf = (kid: string) => `/v1/admin/issuer-keys/${encodeURIComponent(kid)}/revocation`;

/** A refused or failed revocation as the error the API answers with. */
function revocationError(kid: string, status: Extract<IssuerKeyRevocationStatus, { state: 'failed' }>): DomainError {
  const details = { workflowId: status.workflowId, runId: status.runId, reason: status.reason };
  if (status.failureType === ISSUER_KEY_FAILURES.unknownKey)
    return new DomainError('NOT_FOUND', `No issuer key ${kid} in the key directory.`, details);
  if (status.failureType === ISSUER_KEY_FAILURES.refused) return new DomainError('CONFLICT', status.reason, details);
  return new DomainError('INTERNAL', `The revocation of ${kid} failed.`, details);
}

/** The public issuer key directory and the admin routes that revoke a key (docs/PROOFS.md, docs/OPERATIONS.md). */
export function issuerKeyRoutes(deps: IssuerKeyRouteDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: KEY_DIRECTORY_PATH,
      summary:
        'The issuer key directory: every issuer key that signed records, its validity, and its revocation. Verifiers resolve issuer keys through it. Cacheable for 5 minutes; strong ETag.',
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      responses: {
        200: { description: 'The directory (format patchproof-keys/1).', schema: IssuerKeyDirectorySchema },
        304: { description: 'Not modified (If-None-Match matched the ETag).' },
      },
      handler: async (_input, _req, res) => {
        sendCacheableJson(res, await loadKeyDirectory({ keys: deps.keys, kms: deps.kms }), `public, max-age=${DIRECTORY_MAX_AGE_SEC}`);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/issuer-keys/:kid/revoke',
      summary:
        'Revoke an issuer key (an IssuerKeyRevocationWorkflow): records it signed from `revokedAt` on verify as revoked-key, earlier ones stay authentic. Refused for the key that signs unless `force`.',
      tags: ['Admin', 'Key rotation'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: {
        params: z.object({ kid: Kid }),
        body: z
          .object({
            reason: z.string().trim().min(1).max(200).describe('Why; published in the directory. No personal data.'),
            revokedAt: z.iso
              .datetime({ offset: true })
              .refine(
                (value) => revocationTimeProblem(value) === null,
                'a time that has passed: the earliest the key may have been exposed',
              )
              .optional()
              .describe('From when the key’s signatures no longer count: the earliest it may have been exposed. Default: now.'),
            force: z.boolean().optional().describe('Revoke even the key that signs now (or is staged to). Rotate first instead.'),
            requestedBy: Operator.optional(),
          })
          .strict(),
      },
      responses: {
        200: { description: 'Revoked (or already revoked at or before that time: `changed` false).', schema: RevokedSchema },
        202: { description: 'Still recording; follow statusUrl.', schema: RunningSchema },
        404: { description: 'No issuer key with this kid in the directory.' },
        409: { description: 'Refused: the key signs new records (rotate first, or `force`).' },
      },
      handler: async ({ params, body }, _req, res) => {
        const input = issuerKeyRevocationInput(deps.config, {
          kid: params.kid,
          reason: body.reason,
          requestedBy: body.requestedBy ?? 'api',
          trigger: 'api',
          ...(body.revokedAt !== undefined && { revokedAt: body.revokedAt }),
          ...(body.force !== undefined && { force: body.force }),
        });
        const { started, status } = await revokeIssuerKey(deps.temporal, input, { waitMs: REVOKE_WAIT_MS, starts: deps.metrics });
        if (status.state === 'failed') throw revocationError(params.kid, status);
        if (status.state === 'completed') {
          res.json({ ...status.status, workflowId: status.workflowId, runId: status.runId, alreadyStarted: started.alreadyStarted });
          return;
        }
        const statusUrl = statusUrlOf(params.kid);
        res.status(202).location(statusUrl).json({ workflowId: started.workflowId, runId: started.runId, statusUrl });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/admin/issuer-keys/:kid/revocation',
      summary: 'The latest revocation of an issuer key: running, its report, or why it was refused.',
      tags: ['Admin', 'Key rotation'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { params: z.object({ kid: Kid }) },
      responses: { 200: { description: 'Status of the revocation.', schema: StatusSchema }, 404: { description: 'Never revoked.' } },
      handler: async ({ params }, _req, res) => {
        const status = await getIssuerKeyRevocationStatus(deps.temporal, params.kid);
        if (status.state === 'not_found') throw new DomainError('NOT_FOUND', `No revocation of ${params.kid} has run.`);
        res.setHeader('Cache-Control', 'no-store');
        res.json(status);
      },
    }),
  ];
}

import type { Client } from '@temporalio/client';
import type { Response } from 'express';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import type { AppConfig } from '../../src/config';
import { DomainError } from '../../src/errors';
import type { Metrics } from '../../src/metrics';
import { JWT_KID_PATTERN, KEY_IDENTIFIER_PATTERN, KMS_KEY_PURPOSES, type KmsKeyPurpose } from '../../src/rotation/ids';
import {
  getJwtRotationStatus,
  getKmsRotationStatus,
  jwtRotationInput,
  kmsRotationInput,
  signalKmsRotation,
  startJwtRotation,
  startKmsRotation,
} from '../../src/rotation/launch';
import { keySettingsView } from '../../src/rotation/view';
import type { LaunchResult } from '../../src/temporal/launch';
import { principalOf } from '../middleware/apiKey';
import { defineRoute, type RouteSpec } from '../routing';

export interface RotationRouteDeps {
  temporal: Client;
  mongo: Connection;
  metrics: Metrics;
  config: AppConfig;
}

const Purpose = z.enum(KMS_KEY_PURPOSES);
const Operator = z
  .string()
  .regex(/^[A-Za-z0-9._@-]{1,80}$/, 'an operator handle: 1–80 characters of A–Z, a–z, 0–9, . _ @ -')
  .openapi({ description: 'Who acts; recorded in the rotation history. Defaults to `api`.' });
const Duration = z.string().regex(/^(off|\d+(s|m|h|d))$/, 'a duration such as 24h, or off');

const StartedSchema = z.object({ workflowId: z.string(), runId: z.string(), statusUrl: z.string() }).openapi('RotationStarted');
const InProgressSchema = z
  .object({
    error: z.object({
      code: z.literal('OPERATION_IN_PROGRESS'),
      message: z.string(),
      details: z.object({ workflowId: z.string(), runId: z.string(), statusUrl: z.string() }),
    }),
  })
  .openapi('RotationInProgress');
const ApproverIsStarterSchema = z
  .object({
    error: z.object({
      code: z.enum(['APPROVER_IS_STARTER', 'FORBIDDEN']),
      message: z.string(),
      details: z.object({ startedByKeyId: z.string() }).optional(),
      requestId: z.string().optional(),
    }),
  })
  .openapi('RotationApprovalForbidden');
const StatusSchema = z
  .object({
    state: z.enum(['running', 'completed', 'failed', 'not_found']),
    workflowId: z.string(),
    runId: z.string().optional(),
    status: z.unknown().optional(),
    reason: z.string().optional(),
    failureType: z.string().optional(),
  })
  .openapi('RotationStatus');
const OverviewSchema = z
  .object({
    keys: z.array(
      z.object({
        purpose: z.string(),
        active: z.string(),
        source: z.enum(['environment', 'rotation']),
        keys: z.array(
          z.object({
            keyIdentifier: z.string(),
            state: z.string(),
            pubKeyHex: z.string().nullable(),
            address: z.string().nullable(),
            activatedAt: z.string().nullable(),
            retiredAt: z.string().nullable(),
          }),
        ),
      }),
    ),
    rotations: z.array(StatusSchema),
  })
  .openapi('KeyRotationOverview');

const statusUrlOf = (purpose: string) => `/v1/admin/rotations/${purpose}`;

/** Admin routes of key rotation (docs/ROTATION.md): start, approve, cancel and follow rotations; the key settings. */
export function rotationRoutes(deps: RotationRouteDeps): RouteSpec[] {
  function answerStart(purpose: string, started: LaunchResult, res: Response): void {
    const statusUrl = statusUrlOf(purpose);
    if (started.alreadyStarted) {
      throw new DomainError(
        'OPERATION_IN_PROGRESS',
        `A ${purpose} rotation is already running as ${started.workflowId}; follow it instead.`,
        {
          workflowId: started.workflowId,
          runId: started.runId,
          statusUrl,
        },
      );
    }
    res.status(202).location(statusUrl).json({ workflowId: started.workflowId, runId: started.runId, statusUrl });
  }
  const startResponses = {
    202: { description: 'Started; follow it at statusUrl.', schema: StartedSchema },
    409: { description: 'A rotation of this purpose is already running; the body names it.', schema: InProgressSchema },
  };
  const signalResponses = {
    202: { description: 'Delivered; the status shows whether the rotation took it.', schema: StatusSchema },
    404: { description: 'No rotation of this purpose is running.' },
  };

  async function signal(
    purpose: KmsKeyPurpose,
    action: 'approve' | 'cancel',
    body: { by?: string | undefined; reason?: string | undefined },
    keyId: string,
  ) {
    const delivered = await signalKmsRotation(deps.temporal, purpose, action, {
      by: body.by ?? 'api',
      keyId,
      ...(body.reason && { reason: body.reason }),
    });
    if (!delivered) throw new DomainError('NOT_FOUND', `No ${purpose} rotation is running.`);
    return getKmsRotationStatus(deps.temporal, purpose);
  }

  return [
    defineRoute({
      method: 'post',
      path: '/v1/admin/rotations/kms',
      summary: 'Start a KMS key rotation (issuer, funding or svd): preflight, stage, approval, cutover, grace period, retirement.',
      tags: ['Admin', 'Key rotation'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: {
        body: z
          .object({
            purpose: Purpose,
            newKeyIdentifier: z.string().regex(KEY_IDENTIFIER_PATTERN, 'a KMS key identifier: name or name@version'),
            requestedBy: Operator.optional(),
            autoApproveAfter: Duration.optional(),
            gracePeriodDays: z.number().min(0).max(365).optional(),
            disableOldKeyInKms: z.boolean().optional(),
          })
          .strict(),
      },
      responses: startResponses,
      handler: async ({ body }, _req, res) => {
        const input = kmsRotationInput(deps.config, {
          purpose: body.purpose,
          newKeyIdentifier: body.newKeyIdentifier,
          requestedBy: body.requestedBy ?? 'api',
          startedByKeyId: principalOf(res).keyId,
          trigger: 'api',
          ...(body.autoApproveAfter !== undefined && { autoApproveAfter: body.autoApproveAfter === 'off' ? null : body.autoApproveAfter }),
          ...(body.gracePeriodDays !== undefined && { gracePeriodDays: body.gracePeriodDays }),
          ...(body.disableOldKeyInKms !== undefined && { disableOldKeyInKms: body.disableOldKeyInKms }),
        });
        answerStart(body.purpose, await startKmsRotation(deps.temporal, input, deps.metrics), res);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/rotations/jwt',
      summary: 'Start a JWT signing-key rotation: new kid, activation, the old kid verifies until its tokens expired, removal.',
      tags: ['Admin', 'Key rotation'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: {
        body: z
          .object({
            newKid: z.string().regex(JWT_KID_PATTERN, 'a kid: 1–64 characters of A–Z, a–z, 0–9, . _ -').optional(),
            requestedBy: Operator.optional(),
          })
          .strict(),
      },
      responses: startResponses,
      handler: async ({ body }, _req, res) => {
        const input = jwtRotationInput(deps.config, {
          requestedBy: body.requestedBy ?? 'api',
          trigger: 'api',
          ...(body.newKid && { newKid: body.newKid }),
        });
        answerStart('jwt', await startJwtRotation(deps.temporal, input, deps.metrics), res);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/admin/rotations',
      summary: 'Key settings (active key per purpose, every recorded key and its state) and the latest rotation of each purpose.',
      tags: ['Admin', 'Key rotation'],
      access: 'apiKey',
      rateLimit: 'admin',
      responses: { 200: { description: 'Keys and rotations.', schema: OverviewSchema } },
      handler: async (_input, _req, res) => {
        const rotations = await Promise.all([
          ...KMS_KEY_PURPOSES.map((purpose) => getKmsRotationStatus(deps.temporal, purpose)),
          getJwtRotationStatus(deps.temporal),
        ]);
        res.json({ keys: await keySettingsView(deps.mongo, deps.config), rotations });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/admin/rotations/:purpose',
      summary: 'The latest rotation of a purpose: step, keys and timings while it runs, its report or failure after.',
      tags: ['Admin', 'Key rotation'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { params: z.object({ purpose: z.enum([...KMS_KEY_PURPOSES, 'jwt']) }) },
      responses: { 200: { description: 'Status of the rotation.', schema: StatusSchema }, 404: { description: 'Never rotated.' } },
      handler: async ({ params }, _req, res) => {
        const status =
          params.purpose === 'jwt' ? await getJwtRotationStatus(deps.temporal) : await getKmsRotationStatus(deps.temporal, params.purpose);
        if (status.state === 'not_found') throw new DomainError('NOT_FOUND', `No ${params.purpose} rotation has run.`);
        res.json(status);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/rotations/:purpose/approve',
      summary:
        'Approve the cutover of the running KMS rotation of a purpose (who approves is recorded). The key that started the rotation cannot approve it.',
      tags: ['Admin', 'Key rotation'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { params: z.object({ purpose: Purpose }), body: z.object({ by: Operator.optional() }).strict() },
      responses: {
        ...signalResponses,
        403: {
          description:
            'The key lacks the operator role, or `APPROVER_IS_STARTER`: this key started the rotation; another operator key must approve.',
          schema: ApproverIsStarterSchema,
        },
      },
      handler: async ({ params, body }, _req, res) => {
        res.status(202).json(await signal(params.purpose, 'approve', body, principalOf(res).keyId));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/rotations/:purpose/cancel',
      summary: 'Cancel the running KMS rotation of a purpose; before the cutover it rolls back, after it the cancel is refused.',
      tags: ['Admin', 'Key rotation'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: {
        params: z.object({ purpose: Purpose }),
        body: z.object({ by: Operator.optional(), reason: z.string().max(200).optional() }).strict(),
      },
      responses: signalResponses,
      handler: async ({ params, body }, _req, res) => {
        res.status(202).json(await signal(params.purpose, 'cancel', body, principalOf(res).keyId));
      },
    }),
  ];
}

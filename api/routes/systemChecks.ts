import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { DomainError } from '../../src/errors';
import type { Metrics } from '../../src/metrics';
import { getSystemCheckStatus, startSystemCheck } from '../../src/system/launch';
import { systemCheckModel } from '../../src/db/models/systemCheck';
import type { Connection } from 'mongoose';
import { defineRoute, type RouteSpec } from '../routing';

const CheckId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, '1–64 characters of A–Z, a–z, 0–9, _ or -')
  .openapi({ example: 'nightly-2026-11-27' });

const ProbeSchema = z.object({
  dependency: z.enum(['mongo', 'redis']),
  ok: z.boolean(),
  latencyMs: z.number().optional(),
  error: z.string().optional(),
});

const StartedSchema = z
  .object({
    checkId: CheckId,
    workflowId: z.string(),
    alreadyStarted: z.boolean(),
    statusUrl: z.string(),
  })
  .openapi('SystemCheckStarted');

const StatusSchema = z
  .object({
    checkId: CheckId,
    state: z.enum(['running', 'completed', 'failed']),
    progress: z.object({ step: z.string(), probes: z.array(ProbeSchema) }).optional(),
    report: z
      .object({
        status: z.enum(['ok', 'degraded']),
        requestedBy: z.string(),
        probes: z.array(ProbeSchema),
        startedAt: z.string(),
        completedAt: z.string(),
      })
      .optional(),
    reason: z.string().optional(),
  })
  .openapi('SystemCheckStatus');

export function systemCheckRoutes(deps: { temporal: Client; mongo: Connection; metrics: Metrics }): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/admin/system-checks',
      summary: 'Start a SystemCheckWorkflow (Mongo and Redis probes run by the worker). Idempotent per checkId.',
      tags: ['Admin'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { body: z.object({ checkId: CheckId.optional() }).strict() },
      responses: { 202: { description: 'Started, or already started with this checkId.', schema: StartedSchema } },
      handler: async ({ body }, _req, res) => {
        const started = await startSystemCheck(
          deps.temporal,
          { ...(body.checkId && { checkId: body.checkId }), requestedBy: 'api' },
          deps.metrics,
        );
        const statusUrl = `/v1/admin/system-checks/${started.checkId}`;
        res.status(202).location(statusUrl).json({
          checkId: started.checkId,
          workflowId: started.workflowId,
          alreadyStarted: started.alreadyStarted,
          statusUrl,
        });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/admin/system-checks/:checkId',
      summary: 'State of a system check: live progress while it runs, the report once done.',
      tags: ['Admin'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { params: z.object({ checkId: CheckId }) },
      responses: {
        200: { description: 'The check exists.', schema: StatusSchema },
        404: { description: 'No check with this id.' },
      },
      handler: async ({ params }, _req, res) => {
        const status = await getSystemCheckStatus(deps.temporal, params.checkId, systemCheckModel(deps.mongo));
        if (status.state === 'not_found') throw new DomainError('NOT_FOUND', 'No system check with this id.');
        res.setHeader('Cache-Control', 'no-store');
        res.json({ checkId: params.checkId, ...status });
      },
    }),
  ];
}

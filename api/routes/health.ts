import { z } from 'zod';
import type { Metrics } from '../../src/metrics';
import type { ReadinessReport } from '../readiness';
import { defineRoute, type RouteSpec } from '../routing';

const DependencyStatusSchema = z.object({
  status: z.enum(['up', 'down']),
  latencyMs: z.number(),
  error: z.string().optional(),
});

const ReadinessSchema = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.object({ mongo: DependencyStatusSchema, redis: DependencyStatusSchema, temporal: DependencyStatusSchema }),
  })
  .openapi('Readiness');

export function healthRoutes(deps: {
  checkReadiness: () => Promise<ReadinessReport>;
  metrics: Metrics;
  metricsRequireApiKey: boolean;
  deploySha: string;
  /** Retry-After of a not-ready answer. */
  retryAfterSeconds: number;
}): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/health',
      summary: 'Liveness: the process is up and serving HTTP. Checks no dependency.',
      tags: ['Health'],
      access: 'public',
      rateLimit: 'none',
      responses: { 200: { description: 'Alive.', schema: z.object({ status: z.literal('ok'), deploySha: z.string() }) } },
      handler: (_input, _req, res) => {
        res.json({ status: 'ok', deploySha: deps.deploySha });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/ready',
      summary: 'Readiness: MongoDB ping, Redis ping and the Temporal namespace, each with its own status.',
      tags: ['Health'],
      access: 'public',
      rateLimit: 'none',
      responses: {
        200: { description: 'Every dependency answered.', schema: ReadinessSchema },
        503: { description: 'At least one dependency is down.', schema: ReadinessSchema },
      },
      handler: async (_input, _req, res) => {
        const report = await deps.checkReadiness();
        res.setHeader('Cache-Control', 'no-store');
        // Like every 503 of the API, a not-ready answer says when to ask again.
        if (report.status !== 'ready') res.setHeader('Retry-After', String(deps.retryAfterSeconds));
        res.status(report.status === 'ready' ? 200 : 503).json(report);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics of this API process. Needs x-api-key when METRICS_REQUIRE_API_KEY is on.',
      tags: ['Health'],
      access: deps.metricsRequireApiKey ? 'apiKey' : 'public',
      rateLimit: 'none',
      responses: { 200: { description: 'Prometheus text exposition format.', schema: z.string(), contentType: 'text/plain' } },
      handler: async (_input, _req, res) => {
        res.setHeader('Cache-Control', 'no-store');
        res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
      },
    }),
  ];
}

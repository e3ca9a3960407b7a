import type { Client } from '@temporalio/client';
import type { Response } from 'express';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { p2pkhAddress } from '../fields';
import type { Network } from '../../src/chain/addresses';
import type { PoolConfig } from '../../src/config';
import { DomainError } from '../../src/errors';
import type { Metrics } from '../../src/metrics';
import type { PoolHealthReader } from '../../src/pool/health';
import { getPoolOperationStatus, POOL_OPERATION_ID_PATTERN, startSweep, startSync, startTopUp } from '../../src/pool/launch';
import type { LaunchResult } from '../../src/temporal/launch';
import { defineRoute, type RouteSpec } from '../routing';

const KeyIdentifier = z.string().regex(/^[A-Za-z0-9._:-]{1,80}$/, '1–80 characters of A–Z, a–z, 0–9, . _ : -');

const StartedSchema = z
  .object({ operation: z.string(), workflowId: z.string(), runId: z.string(), statusUrl: z.string() })
  .openapi('PoolOperationStarted');

const InProgressSchema = z
  .object({
    error: z.object({
      code: z.literal('OPERATION_IN_PROGRESS'),
      message: z.string(),
      details: z.object({ workflowId: z.string(), runId: z.string(), statusUrl: z.string() }),
    }),
  })
  .openapi('PoolOperationInProgress');

const TotalsSchema = z.object({ count: z.number().int(), totalSatoshis: z.number().int() });
const LastRunSchema = z
  .object({
    workflowId: z.string(),
    runId: z.string(),
    status: z.string(),
    startTime: z.string(),
    closeTime: z.string().nullable(),
    summary: z.unknown(),
  })
  .nullable();

const HealthSchema = z
  .object({
    generatedAt: z.string(),
    db: z.object({
      available: TotalsSchema,
      reserved: TotalsSchema,
      spent: TotalsSchema,
      unconfirmedAvailable: z.number().int(),
      dustAvailable: z.number().int(),
    }),
    funding: z.object({
      keyIdentifier: z.string(),
      address: z.string(),
      network: z.enum(['main', 'test']),
      minConfirmations: z.number().int(),
      target: z.number().int(),
    }),
    change: z.object({ keyIdentifier: z.string(), address: z.string() }),
    chain: z.union([
      z.object({
        height: z.number().int(),
        totalUtxos: z.number().int(),
        totalSatoshis: z.number().int(),
        confirmedUtxos: z.number().int(),
        confirmedSatoshis: z.number().int(),
      }),
      z.object({ error: z.string() }),
    ]),
    lastTopUp: LastRunSchema,
    lastSweep: LastRunSchema,
    schedules: z.array(z.object({ scheduleId: z.string(), paused: z.boolean(), nextRunTimes: z.array(z.string()) })),
  })
  .openapi('UtxoHealth');

const StatusSchema = z
  .object({
    state: z.enum(['running', 'completed', 'failed']),
    workflowId: z.string(),
    runId: z.string(),
    progress: z.unknown().optional(),
    result: z.unknown().optional(),
    status: z.string().optional(),
    reason: z.string().optional(),
    failureType: z.string().optional(),
  })
  .openapi('PoolOperationStatus');

export interface PoolRouteDeps {
  temporal: Client;
  mongo: Connection;
  metrics: Metrics;
  pool: PoolConfig;
  network: Network;
  health: PoolHealthReader;
}

const statusUrlOf = (workflowId: string) => `/v1/admin/utxo/operations/${encodeURIComponent(workflowId)}`;

/** Admin routes of the UTXO pool: health snapshot, starting top-up / sweep / sync, and reading their status. */
export function poolRoutes(deps: PoolRouteDeps): RouteSpec[] {
  const Address = p2pkhAddress(deps.network);

  /** 202 with the new run, or 409 naming the run that holds the operation's id. */
  async function answerStart(operation: string, start: () => Promise<LaunchResult>, res: Response): Promise<void> {
    const started = await start();
    const statusUrl = statusUrlOf(started.workflowId);
    if (started.alreadyStarted) {
      throw new DomainError('OPERATION_IN_PROGRESS', `A ${operation} is already running as ${started.workflowId}; follow it instead.`, {
        workflowId: started.workflowId,
        runId: started.runId,
        statusUrl,
      });
    }
    res.status(202).location(statusUrl).json({ operation, workflowId: started.workflowId, runId: started.runId, statusUrl });
  }

  const startResponses = {
    202: { description: 'Started.', schema: StartedSchema },
    409: { description: 'The operation is already running; the body names the run.', schema: InProgressSchema },
  };

  return [
    defineRoute({
      method: 'get',
      path: '/v1/admin/utxo-health',
      summary: 'UTXO pool snapshot: counts and satoshis by status, addresses, chain view, last runs, schedules. Cached briefly.',
      tags: ['Admin', 'UTXO pool'],
      access: 'apiKey',
      rateLimit: 'admin',
      responses: { 200: { description: 'Pool snapshot.', schema: HealthSchema } },
      handler: async (_input, _req, res) => {
        res.json(await deps.health.read());
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/utxo/top-up',
      summary: 'Start a top-up (split) of the pool; dryRun returns the plan and spends nothing.',
      tags: ['Admin', 'UTXO pool'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { body: z.object({ dryRun: z.boolean().optional() }).strict() },
      responses: startResponses,
      handler: ({ body }, _req, res) =>
        answerStart(
          'top-up',
          () =>
            startTopUp(deps.temporal, deps.pool.fundingKeyIdentifier, { requestedBy: 'api', dryRun: body.dryRun === true }, deps.metrics),
          res,
        ),
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/utxo/sweep',
      summary: 'Start a sweep of a change address to a destination, signed by KMS key identifier; dryRun plans only.',
      tags: ['Admin', 'UTXO pool'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: {
        body: z
          .object({
            changeAddress: Address,
            changeKeyId: KeyIdentifier,
            destinationAddress: Address,
            dryRun: z.boolean().optional(),
          })
          .strict(),
      },
      responses: startResponses,
      handler: ({ body }, _req, res) =>
        answerStart(
          'sweep',
          () =>
            startSweep(
              deps.temporal,
              {
                requestedBy: 'api',
                changeAddress: body.changeAddress,
                changeKeyId: body.changeKeyId,
                destinationAddress: body.destinationAddress,
                dryRun: body.dryRun === true,
              },
              deps.metrics,
            ),
          res,
        ),
    }),
    defineRoute({
      method: 'post',
      path: '/v1/admin/utxo/sync',
      summary: 'Start a sync of the pool with the chain.',
      tags: ['Admin', 'UTXO pool'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { body: z.object({}).strict() },
      responses: startResponses,
      handler: (_input, _req, res) =>
        answerStart('sync', () => startSync(deps.temporal, deps.pool.fundingKeyIdentifier, 'api', deps.metrics), res),
    }),
    defineRoute({
      method: 'get',
      path: '/v1/admin/utxo/operations/:workflowId',
      summary: "A pool operation's latest run: progress while it runs, its report or failure after.",
      tags: ['Admin', 'UTXO pool'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: {
        params: z.object({
          workflowId: z.string().regex(POOL_OPERATION_ID_PATTERN, 'the id of a top-up, sweep, sync or reconcile run'),
        }),
      },
      responses: {
        200: { description: 'Status of the run.', schema: StatusSchema },
        404: { description: 'No such run.' },
      },
      handler: async ({ params }, _req, res) => {
        const status = await getPoolOperationStatus(deps.temporal, params.workflowId);
        if (status.state === 'not_found') throw new DomainError('NOT_FOUND', `No pool operation ${params.workflowId}.`);
        res.json(status);
      },
    }),
  ];
}

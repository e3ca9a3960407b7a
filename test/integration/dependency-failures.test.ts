import { Client, Connection } from '@temporalio/client';
import express from 'express';
import { createApp } from '../../api/app';
import { errorHandler } from '../../api/errors';
import { createRateLimiter } from '../../api/middleware/rateLimit';
import path from 'node:path';
import { freePort, startRedis } from '../../ops/dev-stack/services';
import { connectRedis } from '../../src/redis/client';
import { testEnv } from '../support/testEnv';
import { ensureIndexes } from '../../src/db/indexes';
import { registerModels } from '../../src/db/models';
import { listen } from '../support/http';
import { connectTestDeps, type TestDeps } from '../support/stack';

describe('when a dependency is away', () => {
  let deps: TestDeps;

  beforeAll(async () => {
    deps = await connectTestDeps('api', { ADMIN_API_MAX: '1000' });
  });
  afterAll(() => deps.close());

  it('answers 503 DEPENDENCY_UNAVAILABLE, not 500, when Temporal cannot be reached', async () => {
    // No retry interceptor, so the unreachable server fails the call at once instead of after the client's backoff.
    const deadConnection = Connection.lazy({ address: `127.0.0.1:${await freePort()}`, interceptors: [] });
    const app = createApp({ ...deps, temporal: new Client({ connection: deadConnection, namespace: 'default' }) });
    const server = await listen(app);
    try {
      const res = await fetch(`${server.baseUrl}/v1/admin/system-checks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': deps.config.auth.apiKey },
        body: '{"checkId":"temporal-away"}',
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('DEPENDENCY_UNAVAILABLE');
      const metrics = await deps.metrics.registry.getSingleMetricAsString('patchproof_workflow_starts_total');
      expect(metrics).toMatch(/outcome="failed"[^\n]* 1/);
    } finally {
      await server.close();
      await deadConnection.close();
    }
  });

  it('a fail-closed limiter answers 503 while Redis is lost; a fail-open one lets the request through', async () => {
    const lostRedis = deps.redis.duplicate();
    await lostRedis.connect();
    lostRedis.disconnect();
    const app = express();
    const limiter = (failOpen: boolean) =>
      createRateLimiter({
        name: `t${String(failOpen)}`,
        windowMs: 60_000,
        max: 5,
        redis: lostRedis,
        logger: deps.logger,
        failOpen,
        timeoutMs: deps.config.deadlines.rateLimitMs,
      });
    app.get('/closed', limiter(false), (_req, res) => void res.json({ ok: true }));
    app.get('/open', limiter(true), (_req, res) => void res.json({ ok: true }));
    app.use(errorHandler(deps.logger));
    const server = await listen(app);
    try {
      const closed = await fetch(`${server.baseUrl}/closed`);
      expect(closed.status).toBe(503);
      expect(((await closed.json()) as { error: { code: string } }).error.code).toBe('DEPENDENCY_UNAVAILABLE');
      expect((await fetch(`${server.baseUrl}/open`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('a fail-closed limiter works again once a restarted Redis answers, though Redis forgot its scripts', async () => {
    const port = await freePort();
    const start = () =>
      startRedis({ bin: testEnv('redisServer'), port, logFile: path.join(testEnv('scratchDir'), 'logs', `limiter-redis-${port}.log`) });
    let server = await start();
    const redis = await connectRedis({ ...deps.config.redis, url: `redis://127.0.0.1:${port}/0` }, { connectionName: 'limiter-restart' });
    const app = express();
    app.get(
      '/closed',
      createRateLimiter({
        name: 'restart',
        windowMs: 60_000,
        max: 1000,
        redis,
        logger: deps.logger,
        failOpen: false,
        timeoutMs: deps.config.deadlines.rateLimitMs,
      }),
      (_req, res) => void res.json({ ok: true }),
    );
    app.use(errorHandler(deps.logger));
    const api = await listen(app);
    try {
      expect((await fetch(`${api.baseUrl}/closed`)).status).toBe(200);
      await server.stop();
      expect((await fetch(`${api.baseUrl}/closed`)).status).toBe(503);
      server = await start();
      // The client reconnects by itself (backoff up to 2 s); the limiter's script is gone from the new server.
      const statuses: number[] = [];
      for (const until = Date.now() + 10_000; statuses.at(-1) !== 200 && Date.now() < until;) {
        statuses.push((await fetch(`${api.baseUrl}/closed`)).status);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(statuses.at(-1)).toBe(200);
      expect((await fetch(`${api.baseUrl}/closed`)).status).toBe(200);
    } finally {
      await api.close();
      redis.disconnect();
      await server.stop();
    }
  });

  it('creates every declared index at worker start', async () => {
    registerModels(deps.mongo);
    const reports = await ensureIndexes(deps.mongo);
    expect(reports.map((r) => [r.model, r.status]).sort()).toEqual([
      ['ActiveKey', 'ok'],
      ['AnchorTx', 'ok'],
      ['ApiKey', 'ok'],
      ['ArchivedHistory', 'ok'],
      ['BlockHeader', 'ok'],
      ['ChainTip', 'ok'],
      ['EmailMessage', 'ok'],
      ['HistoryWatermark', 'ok'],
      ['IssuerKeyRevocation', 'ok'],
      ['OwnerAccount', 'ok'],
      ['OwnerBinding', 'ok'],
      ['Patch', 'ok'],
      ['PatchBatch', 'ok'],
      ['PatchBatchChunk', 'ok'],
      ['PatchBatchItem', 'ok'],
      ['RotationKey', 'ok'],
      ['Setting', 'ok'],
      ['SvdRegistration', 'ok'],
      ['SystemCheck', 'ok'],
      ['SystemProbe', 'ok'],
      ['Tag', 'ok'],
      ['TagCounterClaim', 'ok'],
      ['TapEvent', 'ok'],
      ['Transfer', 'ok'],
      ['UnlockableContent', 'ok'],
      // TTL indexes: MongoDB builds them, FerretDB answers NotImplemented (tolerated: queries enforce the expiry).
      ['UsedNonce', expect.stringMatching(/^(ok|not_implemented)$/)],
      ['Utxo', 'ok'],
      ['UtxoClaim', 'ok'],
      ['UtxoReservation', 'ok'],
      ['VerificationCode', expect.stringMatching(/^(ok|not_implemented)$/)],
      ['WebhookDelivery', 'ok'],
      ['WebhookEndpoint', 'ok'],
      ['WebhookEvent', 'ok'],
    ]);
    const indexes = await deps.mongo.collection('system_checks').indexes();
    expect(indexes.map((i) => i.key)).toContainEqual({ completedAt: -1 });
  });
});

import { EventEmitter } from 'node:events';
import type winston from 'winston';
import { ApiKeyAuthenticator, requireApiKey } from '../../../api/middleware/apiKey';
import { createLogger } from '../../../src/logging/logger';
import {
  createMetrics,
  initialiseSvdSeries,
  kmsCallObserver,
  recordAnchorConfirmed,
  recordAnchorPlanned,
  watchMongoConnection,
  watchRedisConnection,
  wocCallObserver,
} from '../../../src/metrics';
import { CapturedLogs } from '../../support/stack';

const value = async (metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string> = {}) => {
  // Histograms list their _bucket, _sum and _count samples under the family name, each with its metricName.
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    const samples = (metric.values as { metricName?: string; labels: Record<string, unknown>; value: number }[]).filter(
      (v) => (v.metricName ?? metric.name) === name,
    );
    const match = samples.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    if (match) return match.value;
  }
  return undefined;
};

describe('metrics', () => {
  it('starts the series of known label values at zero, labelled with service and deploy SHA', async () => {
    const metrics = createMetrics({ service: 'api', deploySha: 'abc123' });
    const text = await metrics.registry.metrics();
    expect(text).toContain('patchproof_registrations_total{outcome="failed",service="api",deploy_sha="abc123"} 0');
    expect(text).toContain('patchproof_broadcast_rejections_total{reason="missing_inputs",service="api",deploy_sha="abc123"} 0');
    expect(text).toContain('patchproof_connection_errors_total{dependency="mongo",service="api",deploy_sha="abc123"} 0');
    expect(text).toContain('patchproof_kms_requests_total{operation="sign",outcome="success",service="api",deploy_sha="abc123"} 0');
    initialiseSvdSeries(metrics, 'k-1', 180);
    expect(await value(metrics, 'patchproof_svd_events_total', { event_type: 'replayed', kid: 'k-1' })).toBe(0);
    expect(await value(metrics, 'patchproof_svd_challenge_ttl_seconds')).toBe(180);
  });

  it('counts KMS and WOC calls and their latency by operation and outcome', async () => {
    const metrics = createMetrics({ service: 'worker-main', deploySha: 'x' });
    kmsCallObserver(metrics)({ operation: 'sign', outcome: 'timeout', seconds: 0.2 });
    wocCallObserver(metrics)({ operation: 'broadcast', outcome: 'success', seconds: 0.05 });
    expect(await value(metrics, 'patchproof_kms_requests_total', { operation: 'sign', outcome: 'timeout' })).toBe(1);
    expect(await value(metrics, 'patchproof_woc_requests_total', { operation: 'broadcast', outcome: 'success' })).toBe(1);
    expect(await value(metrics, 'patchproof_kms_request_duration_seconds_count', { operation: 'sign' })).toBe(1);
  });

  it('records the anchor batch size, fee per record and confirmation lag', async () => {
    const metrics = createMetrics({ service: 'worker-main', deploySha: 'x' });
    recordAnchorPlanned(metrics, { records: 4, feeSatoshis: 100 });
    recordAnchorConfirmed(metrics, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:01:30Z'));
    expect(await value(metrics, 'patchproof_anchor_batch_size_sum')).toBe(4);
    expect(await value(metrics, 'patchproof_anchor_fee_per_record_satoshis_sum')).toBe(25);
    expect(await value(metrics, 'patchproof_anchor_confirmation_lag_seconds_sum')).toBe(90);
  });

  it('follows Mongo and Redis connection state from driver events', async () => {
    const metrics = createMetrics({ service: 'api', deploySha: 'x' });
    const mongo = Object.assign(new EventEmitter(), { readyState: 1 });
    const redis = Object.assign(new EventEmitter(), { status: 'ready' });
    watchMongoConnection(metrics, mongo);
    watchRedisConnection(metrics, redis);
    expect(await value(metrics, 'patchproof_connection_up', { dependency: 'mongo' })).toBe(1);
    mongo.emit('disconnected');
    redis.emit('error', new Error('ECONNRESET'));
    redis.emit('close');
    expect(await value(metrics, 'patchproof_connection_up', { dependency: 'mongo' })).toBe(0);
    expect(await value(metrics, 'patchproof_connection_errors_total', { dependency: 'mongo' })).toBe(1);
    expect(await value(metrics, 'patchproof_connection_up', { dependency: 'redis' })).toBe(0);
    expect(await value(metrics, 'patchproof_connection_errors_total', { dependency: 'redis' })).toBe(1);
    mongo.emit('reconnected');
    redis.emit('ready');
    expect(await value(metrics, 'patchproof_connection_up', { dependency: 'mongo' })).toBe(1);
    expect(await value(metrics, 'patchproof_connection_up', { dependency: 'redis' })).toBe(1);
  });
});

describe('API key check', () => {
  const KEY = 'the-api-key-0123456789abcdef0123456789';
  const run = async (headers: Record<string, string>) => {
    const logs = new CapturedLogs();
    const logger = createLogger({ service: 'api', deploySha: 'x', level: 'debug', format: 'json', transports: [logs] });
    (logger.transports[0] as winston.transport).silent = true;
    const req = {
      method: 'GET',
      originalUrl: '/metrics?x=1',
      ip: '203.0.113.9',
      get: (name: string) => headers[name.toLowerCase()],
    };
    // The bootstrap key only: keys that are not pp_… never reach the database.
    const authenticator = new ApiKeyAuthenticator({ mongo: undefined as never, logger, bootstrapKey: KEY, cacheMs: 0 });
    const passed = await new Promise<unknown>((resolve) =>
      requireApiKey({ authenticator, logger })(req as never, { locals: {} } as never, (err?: unknown) => resolve(err)),
    );
    return { passed, logs };
  };

  it('accepts the key as x-api-key or as `Authorization: ApiKey <key>` (what a Prometheus scrape can send)', async () => {
    expect((await run({ 'x-api-key': KEY })).passed).toBeUndefined();
    expect((await run({ authorization: `ApiKey ${KEY}` })).passed).toBeUndefined();
  });

  it('refuses anything else and logs the route and IP, never the key presented', async () => {
    const refused: Record<string, string>[] = [{}, { authorization: `Bearer ${KEY}` }, { 'x-api-key': 'wrong-key-0123456789abcdef' }];
    for (const headers of refused) {
      const { passed, logs } = await run(headers);
      expect(passed).toMatchObject({ code: 'UNAUTHORIZED' });
      expect(logs.lines).toEqual([expect.objectContaining({ message: 'api key rejected', route: '/metrics', ip: '203.0.113.9' })]);
      expect(logs.text()).not.toContain('wrong-key');
      expect(logs.text()).not.toContain(KEY);
    }
  });
});

import { Client, Connection } from '@temporalio/client';
import { createApp } from '../../api/app';
import { freePort } from '../../ops/dev-stack/services';
import { loadConfig } from '../../src/config';
import { listen } from '../support/http';
import { connectTestDeps, startTestApi, testEnvironment, type TestApi } from '../support/stack';
import { tcpProxy } from '../support/tcpProxy';
import { testEnv } from '../support/testEnv';

const API_KEY = 'test-api-key-0123456789abcdef0123456789';

async function call(api: TestApi, path: string, init: RequestInit = {}) {
  const response = await fetch(`${api.baseUrl}${path}`, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics, HTML)
  }
  return {
    text,
    status: response.status,
    headers: response.headers,
    body: body as { error?: { code: string; message: string; details?: unknown; requestId?: string } } & Record<string, unknown>,
  };
}

const json = (body: string, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-api-key': API_KEY, ...headers },
  body,
});

describe('HTTP baseline', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi({ CORS_ALLOWED_ORIGINS: 'https://app.patchproof.example', JSON_BODY_LIMIT: '1kb', ADMIN_API_MAX: '1000' });
  });
  afterAll(() => api.close());

  it('answers liveness without touching dependencies', async () => {
    const res = await call(api, '/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', deploySha: 'dev' });
  });

  // A static 200 from /ready would report a service ready whose dependencies are down.
  it('reports readiness per dependency after really pinging each', async () => {
    const res = await call(api, '/ready');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ready',
      checks: { mongo: { status: 'up' }, redis: { status: 'up' }, temporal: { status: 'up' } },
    });
  });

  // Client mistakes must be 4xx, in one envelope shape, never a 500.
  it.each([
    ['malformed JSON', json('{"checkId":'), 400, 'MALFORMED_JSON'],
    ['a body over the size limit', json(JSON.stringify({ checkId: 'a', pad: 'x'.repeat(4096) })), 413, 'PAYLOAD_TOO_LARGE'],
    ['a wrong type', json('{"checkId":42}'), 400, 'VALIDATION_FAILED'],
    ['a non-object body', json('[1,2]'), 400, 'VALIDATION_FAILED'],
    ['a NoSQL operator in a value', json('{"checkId":{"$ne":null}}'), 400, 'NOSQL_OPERATOR_REJECTED'],
    ['a dotted key', json('{"a.b":1}'), 400, 'NOSQL_OPERATOR_REJECTED'],
    [
      'a body that is not JSON',
      { method: 'POST', headers: { 'content-type': 'text/plain', 'x-api-key': API_KEY }, body: 'checkId=1' },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['a missing API key', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }, 401, 'UNAUTHORIZED'],
  ] as [string, RequestInit, number, string][])('answers %s with the envelope and a %s', async (_name, init, status, code) => {
    const res = await call(api, '/v1/admin/system-checks', init);
    expect(res.status).toBe(status);
    expect(res.body.error).toMatchObject({ code, message: expect.any(String), requestId: expect.any(String) });
    expect(res.headers.get('x-request-id')).toBe(res.body.error?.requestId);
  });

  it('names unknown fields instead of dropping them', async () => {
    const res = await call(api, '/v1/admin/system-checks', json('{"checkId":"a","surprise":1}'));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.error?.details)).toContain('surprise');
  });

  it('answers an unknown route with 404 in the envelope', async () => {
    const res = await call(api, '/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('NOT_FOUND');
  });

  it('rejects an origin outside the CORS allowlist with 403 and allows a listed one', async () => {
    const denied = await call(api, '/health', { headers: { origin: 'https://evil.example' } });
    expect(denied.status).toBe(403);
    expect(denied.body.error?.code).toBe('CORS_ORIGIN_DENIED');
    const allowed = await call(api, '/health', { headers: { origin: 'https://app.patchproof.example' } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.patchproof.example');
  });

  // An x-request-id echoed unvalidated could inject text into logs and headers.
  it('echoes a well-formed X-Request-Id and replaces one that could inject text', async () => {
    const good = await call(api, '/health', { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(good.headers.get('x-request-id')).toBe('trace-abc.123');
    const bad = await call(api, '/health', { headers: { 'x-request-id': 'evil value with spaces and "quotes"' } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs a rejected API key with route and IP but never the key', async () => {
    const presented = 'presented-wrong-key-value-42';
    const res = await call(api, '/v1/admin/system-checks/some-id', { headers: { 'x-api-key': presented } });
    expect(res.status).toBe(401);
    const line = api.deps.logs.lines.find((l) => l.message === 'api key rejected' && l.route === '/v1/admin/system-checks/some-id');
    expect(line).toMatchObject({ method: 'GET', ip: '127.0.0.1', level: 'warn' });
    expect(api.deps.logs.text()).not.toContain(presented);
  });

  it('serves Prometheus metrics with the HTTP histogram labelled by route template', async () => {
    await call(api, '/v1/admin/system-checks/abc', { headers: { 'x-api-key': API_KEY } });
    const res = await call(api, '/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/patchproof_http_request_duration_seconds_count\{[^}]*route="\/v1\/admin\/system-checks\/:checkId"/);
    expect(res.text).toContain('patchproof_process_cpu_seconds_total');
  });

  it('serves the OpenAPI document and the docs UI', async () => {
    const spec = await call(api, '/openapi.json');
    expect(spec.status).toBe(200);
    expect(Object.keys((spec.body as { paths: object }).paths)).toEqual(
      expect.arrayContaining(['/health', '/ready', '/metrics', '/v1/admin/system-checks', '/v1/admin/system-checks/{checkId}']),
    );
    const docs = await fetch(`${api.baseUrl}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
  });
});

describe('HTTP baseline with protected metrics and a tight limit', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi({ METRICS_REQUIRE_API_KEY: 'true', ADMIN_API_MAX: '3', ADMIN_API_WINDOW_MS: '60000' });
  });
  afterAll(() => api.close());

  // /metrics names routes, dependencies and key ids: not for anyone who asks.
  it('gates /metrics behind the API key when METRICS_REQUIRE_API_KEY is on', async () => {
    expect((await call(api, '/metrics')).status).toBe(401);
    expect((await call(api, '/metrics', { headers: { 'x-api-key': API_KEY } })).status).toBe(200);
  });

  it('limits admin routes through Redis and answers 429 with Retry-After', async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 5; i++) {
      last = await call(api, '/v1/admin/system-checks/unknown-check', { headers: { 'x-api-key': API_KEY } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([404, 404, 404, 429, 429]);
    expect(last?.body.error?.code).toBe('RATE_LIMITED');
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
    const keys = await api.deps.redis.keys('rl:admin:*');
    expect(keys.length).toBeGreaterThan(0);
  });

  it('reports not ready with 503 and names Redis when Redis is lost', async () => {
    api.deps.redis.disconnect();
    const res = await call(api, '/ready');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({
      status: 'not_ready',
      checks: { redis: { status: 'down' }, mongo: { status: 'up' }, temporal: { status: 'up' } },
    });
  });
});

// Readiness for the two other dependencies: /ready names whichever one is down.
describe('HTTP baseline readiness with MongoDB or Temporal down', () => {
  const expectNotReady = async (baseUrl: string, down: 'mongo' | 'temporal', secretsNotShown: string[]) => {
    const res = await fetch(`${baseUrl}/ready`);
    const text = await res.text();
    expect(res.status).toBe(503);
    const up = { status: 'up', latencyMs: expect.any(Number) };
    expect(JSON.parse(text)).toEqual({
      status: 'not_ready',
      checks: {
        mongo:
          down === 'mongo'
            ? { status: 'down', latencyMs: expect.any(Number), error: expect.stringMatching(/^(timeout|unreachable)$/) }
            : up,
        redis: up,
        temporal:
          down === 'temporal'
            ? { status: 'down', latencyMs: expect.any(Number), error: expect.stringMatching(/^(timeout|unreachable)$/) }
            : up,
      },
    });
    // Only the class of error: no address, port or driver message.
    for (const value of secretsNotShown) expect(text).not.toContain(value);
  };

  it('answers 503 naming mongo when MongoDB becomes unreachable', async () => {
    const mongoUrl = new URL(testEnv('mongoUri'));
    const proxy = await tcpProxy({ host: mongoUrl.hostname, port: Number(mongoUrl.port) });
    const db = `ready_mongo_${Date.now()}`;
    const api = await startTestApi({
      MONGODB_URI: `mongodb://127.0.0.1:${proxy.port}/${db}?directConnection=true`,
      DB_SERVER_SELECTION_TIMEOUT_MS: '1000',
    });
    try {
      expect((await fetch(`${api.baseUrl}/ready`)).status).toBe(200);
      await proxy.close();
      await expectNotReady(api.baseUrl, 'mongo', [String(proxy.port), db]);
    } finally {
      await proxy.close();
      await api.close();
    }
  });

  it('answers 503 naming temporal when the Temporal connection points at a closed port', async () => {
    const closedPort = await freePort();
    const config = loadConfig(testEnvironment({ TEMPORAL_ADDRESS: `127.0.0.1:${closedPort}` }));
    const deps = await connectTestDeps('api');
    // Connection.connect would fail at once; the API keeps a lazily connecting client, as after Temporal went away.
    const temporal = new Client({
      connection: Connection.lazy({ address: config.temporal.address }),
      namespace: config.temporal.namespace,
    });
    const server = await listen(createApp({ ...deps, temporal }));
    try {
      await expectNotReady(server.baseUrl, 'temporal', [String(closedPort)]);
    } finally {
      await server.close();
      // The lazy connection is left to the process: closing it while the client's gRPC retry interceptor still holds a
      // retry timer makes that timer throw "Channel has been shut down" (@temporalio/client grpc-retry.ts).
      await deps.close();
    }
  });
});

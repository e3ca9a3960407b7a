import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, startRedis, type RunningService } from '../../ops/dev-stack/services';
import { runEntry } from '../support/processes';
import { startTestApi, testEnvironment, type TestApi } from '../support/stack';
import { testEnv } from '../support/testEnv';

/**
 * Guards against a rate limiter whose Redis client ignores REDIS_PASSWORD. Here Redis requires a password
 * (`--requirepass`, as production does), REDIS_URL carries none and REDIS_PASSWORD does. The one client of the API
 * must authenticate with it, and the limiter must count in that Redis; without the password the API must not start,
 * and a Redis that stops accepting the password must show as down in /ready, never with the secret in any answer.
 */

const PASSWORD = 'redis-auth-test-secret-5c1d8e2f';

describe('Redis with a password: REDIS_URL without it, REDIS_PASSWORD with it', () => {
  let redis: RunningService;
  let url: string;
  let admin: Redis;

  beforeAll(async () => {
    const port = await freePort();
    redis = await startRedis({
      bin: testEnv('redisServer'),
      port,
      password: PASSWORD,
      logFile: path.join(testEnv('scratchDir'), 'logs', `redis-auth-${port}.log`),
    });
    url = `redis://127.0.0.1:${port}/0`;
    admin = new Redis({ port, password: PASSWORD, lazyConnect: true });
    await admin.connect();
  });
  afterAll(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  it('really requires the password', async () => {
    const anonymous = new Redis({
      port: redis.port,
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    anonymous.on('error', () => undefined);
    await anonymous.connect();
    await expect(anonymous.keys('*')).rejects.toThrow(/NOAUTH/);
    anonymous.disconnect();
  });

  describe('the API configured with REDIS_PASSWORD', () => {
    let api: TestApi;

    beforeAll(async () => {
      api = await startTestApi({ REDIS_URL: url, REDIS_PASSWORD: PASSWORD, ADMIN_API_MAX: '2', ADMIN_API_WINDOW_MS: '60000' });
    });
    afterAll(() => api?.close());

    it('is ready, with Redis up', async () => {
      const res = await fetch(`${api.baseUrl}/ready`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ checks: { redis: { status: 'up' } } });
    });

    it('counts admin requests in that Redis: rl:admin:* keys appear and the third request in the window is limited', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${api.baseUrl}/v1/admin/system-checks/not-there`, {
          headers: { 'x-api-key': api.deps.config.auth.apiKey },
        });
        statuses.push(res.status);
      }
      // A limiter that could not reach Redis fails open and would answer 404 three times.
      expect(statuses).toEqual([404, 404, 429]);
      const keys = await admin.keys('rl:admin:*');
      expect(keys.length).toBeGreaterThan(0);
      expect(Number(await admin.get(keys[0]!))).toBeGreaterThanOrEqual(3);
    });

    it('reports Redis down in /ready, without the secret, once Redis stops accepting the password', async () => {
      const replaced = 'redis-auth-replaced-secret-9a7b';
      await admin.config('SET', 'requirepass', replaced);
      try {
        // Existing connections stay authenticated: drop the API's, so it reconnects with the old password.
        await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        const deadline = Date.now() + 10_000;
        let body = '';
        let status = 0;
        while (Date.now() < deadline) {
          const res = await fetch(`${api.baseUrl}/ready`);
          status = res.status;
          body = await res.text();
          if (status === 503) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(status).toBe(503);
        expect(JSON.parse(body)).toMatchObject({ status: 'not_ready', checks: { redis: { status: 'down', error: expect.any(String) } } });
        expect(body).not.toContain(PASSWORD);
        expect(body).not.toContain(replaced);
        expect(api.deps.logs.text()).not.toContain(PASSWORD);
      } finally {
        await admin.config('SET', 'requirepass', PASSWORD);
      }
    });
  });

  it('also accepts the password in REDIS_URL itself', async () => {
    const api = await startTestApi({ REDIS_URL: url.replace('redis://', `redis://:${PASSWORD}@`) });
    try {
      expect((await fetch(`${api.baseUrl}/ready`)).status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it.each([
    ['without REDIS_PASSWORD', {}],
    ['with a wrong REDIS_PASSWORD', { REDIS_PASSWORD: 'redis-auth-wrong-secret-31f0' }],
  ])('refuses to start %s, naming Redis and no secret', async (_name, extra: Record<string, string>) => {
    const env = testEnvironment({ REDIS_URL: url, PORT: String(await freePort()), LOG_FORMAT: 'json', ...extra });
    const run = await runEntry('api/server.ts', [], env, 60_000);
    expect(run.code).toBe(1);
    const output = `${run.stdout}\n${run.stderr}`;
    expect(output).toContain('redis unavailable at startup');
    expect(run.stderr).toMatch(extra.REDIS_PASSWORD ? /api failed to start: redis: WRONGPASS/ : /api failed to start: redis: NOAUTH/);
    expect(output).not.toContain(PASSWORD);
    if (extra.REDIS_PASSWORD) expect(output).not.toContain(extra.REDIS_PASSWORD);
  });
});

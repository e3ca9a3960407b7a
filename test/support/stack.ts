import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Connection as MongoConnection } from 'mongoose';
import Transport from 'winston-transport';
import { activityDepsFromConfig, type ActivityDeps } from '../../activities';
import { createApp } from '../../api/app';
import { loadConfig, type AppConfig } from '../../src/config';
import { connectMongo } from '../../src/db/mongo';
import { createLogger, type Logger } from '../../src/logging/logger';
import { createMetrics, type Metrics } from '../../src/metrics';
import { connectRedis } from '../../src/redis/client';
import { createMainWorker } from '../../workers/mainWorker';
import { listen } from './http';
import { captureLogLine, registerSecrets } from './runCapture';
import { jestWorkerId, testEnv } from './testEnv';

const MESSAGE = Symbol.for('message');

/**
 * Collects every log line a test process writes, after redaction, so tests can assert on them; each line also goes
 * to the run's capture directory, which the secrets scan reads after the suite.
 */
export class CapturedLogs extends Transport {
  readonly lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void): void {
    this.lines.push(info);
    const formatted = (info as Record<symbol, unknown>)[MESSAGE];
    captureLogLine(typeof formatted === 'string' ? formatted : JSON.stringify(info));
    next();
  }
  text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

/** Environment for loadConfig pointing at the test services, with an isolated database, Redis db and namespace. */
/**
 * SMTP capture, the cheapest bcrypt cost and generous limits, for tests that mail codes and log owners in many times
 * (production uses VERIFY_CODE_SALT_ROUNDS=10).
 */
export function ownerAuthTestEnv(): Record<string, string> {
  return {
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: testEnv('smtpPort'),
    VERIFY_CODE_SALT_ROUNDS: '4',
    EMAIL_CODE_RATE_MAX_PER_IP: '1000',
    EMAIL_CODE_RATE_MAX_PER_IDENTIFIER: '1000',
    SVD_RATE_MAX_PER_IP: '1000',
    SVD_RATE_MAX_PER_USER: '1000',
    PUBLIC_API_MAX: '1000',
    ADMIN_API_MAX: '1000',
  };
}

export function testEnvironment(overrides: Record<string, string> = {}): Record<string, string> {
  const db = `t_${jestWorkerId()}_${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'debug',
    MONGODB_URI: `${testEnv('mongoUri')}/${db}`,
    REDIS_URL: `${testEnv('redisUrl')}/${jestWorkerId()}`,
    TEMPORAL_ADDRESS: testEnv('temporalAddress'),
    TEMPORAL_NAMESPACE: `test-${jestWorkerId()}`,
    API_KEY: 'test-api-key-0123456789abcdef0123456789',
    PORT: '0',
    // Pool schedules are created by the tests that exercise them, not by every worker a test starts.
    UTXO_TOPUP_EVERY: 'off',
    UTXO_SWEEP_CRON: 'off',
    UTXO_RECONCILE_EVERY: 'off',
    BACKUP_CRON: 'off',
    BACKUP_RESTORE_CHECK_CRON: 'off',
    HISTORY_ARCHIVE_EVERY: 'off',
    // Tests watch verdicts change (transfers, revocations) at once; the verdict cache has its own test.
    VERIFY_CACHE_SECONDS: '0',
    ...overrides,
  };
  registerSecrets(env);
  return env;
}

export interface TestDeps {
  config: AppConfig;
  logger: Logger;
  logs: CapturedLogs;
  metrics: Metrics;
  mongo: MongoConnection;
  redis: Redis;
  temporal: Client;
  close(): Promise<void>;
}

/** Connects to the test services the way the API and worker processes do. */
export async function connectTestDeps(service: string, overrides: Record<string, string> = {}): Promise<TestDeps> {
  const config = loadConfig(testEnvironment(overrides));
  const logs = new CapturedLogs();
  const logger = createLogger({ service, deploySha: 'test', level: 'debug', format: 'json', transports: [logs] });
  // Lines are asserted through CapturedLogs; print them too only when asked (PATCHPROOF_TEST_LOGS=1).
  logger.transports[0]!.silent = process.env.PATCHPROOF_TEST_LOGS !== '1';
  const metrics = createMetrics({ service, deploySha: 'test' });
  const redis = await connectRedis(config.redis, { connectionName: service });
  // Each Jest worker owns one Redis db and runs its files one after another: start every file from empty.
  await redis.flushdb();
  const mongo = await connectMongo(config.mongo);
  const connection = await Connection.connect({ address: config.temporal.address });
  const temporal = new Client({ connection, namespace: config.temporal.namespace });
  return {
    config,
    logger,
    logs,
    metrics,
    mongo,
    redis,
    temporal,
    async close() {
      await mongo.dropDatabase().catch(() => undefined);
      redis.disconnect();
      await Promise.allSettled([mongo.close(), connection.close()]);
    },
  };
}

export interface TestApi {
  baseUrl: string;
  deps: TestDeps;
  close(): Promise<void>;
}

/** The real Express app on an ephemeral port, wired to the test services. */
export async function startTestApi(overrides: Record<string, string> = {}): Promise<TestApi> {
  const deps = await connectTestDeps('api', overrides);
  const server = await listen(createApp(deps));
  return {
    baseUrl: server.baseUrl,
    deps,
    async close() {
      await server.close();
      await deps.close();
    },
  };
}

/** The activities' dependencies, built the way workers/main.ts builds them. */
export function activityDeps(deps: TestDeps): ActivityDeps {
  return activityDepsFromConfig(deps.config, deps);
}

/** The main worker with real activities, on the test namespace. */
export async function createTestWorker(deps: TestDeps): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect({ address: deps.config.temporal.address });
  const worker = await createMainWorker({
    connection,
    namespace: deps.config.temporal.namespace,
    deps: activityDeps(deps),
    workflowBundlePath: testEnv('workflowBundle'),
    shutdownGraceMs: 1_000,
    shutdownForceMs: 5_000,
  });
  return { worker, connection };
}

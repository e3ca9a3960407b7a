import type { Server } from 'node:http';
import { ConfigError, loadConfig } from '../src/config';
import { connectMongo } from '../src/db/mongo';
import { createLogger } from '../src/logging/logger';
import { redactString } from '../src/logging/redact';
import { createMetrics, watchMongoConnection, watchRedisConnection } from '../src/metrics';
import { connectRedis } from '../src/redis/client';
import { verdictCacheFromConfig } from './verdictCache';
import { connectTemporalClient } from '../src/temporal/connection';
import { chainClientsFromConfig } from '../src/chain/clients';
import { keyringFromConfig } from '../src/rotation/keyring';
import { assertActiveKeysAvailable } from '../src/rotation/startup';
import { createDependencyCircuits } from '../src/resilience/circuits';
import { createApp } from './app';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ service: 'api', deploySha: config.deploySha, level: config.log.level, format: config.log.format });
  const metrics = createMetrics({ service: 'api', deploySha: config.deploySha });
  // Every store call on a request path has a deadline; a stalled store trips its circuit (docs/OPERATIONS.md).
  const circuits = createDependencyCircuits(config.deadlines, { metrics, logger });

  // Redis is required at start (rate limits, SVD caches): fail fast rather than serve without it.
  const redis = await connectRedis(config.redis, {
    connectionName: 'patchproof-api',
    onError: (err) => logger.warn('redis connection error', { err }),
    guard: { commandTimeoutMs: config.deadlines.redisCommandMs, breaker: circuits.redis },
  }).catch((err: unknown) => {
    logger.error('redis unavailable at startup', { err });
    throw err;
  });
  const mongo = await connectMongo(config.mongo, { operationTimeoutMs: config.deadlines.mongoOperationMs, breaker: circuits.mongo });
  // Exports stream for minutes: their reads get the driver's ordinary timeouts, not the request deadline.
  const streamingMongo = await connectMongo(config.mongo);
  mongo.on('disconnected', () => logger.warn('mongo disconnected'));
  mongo.on('reconnected', () => logger.info('mongo reconnected'));
  watchMongoConnection(metrics, mongo);
  watchRedisConnection(metrics, redis);
  const temporal = await connectTemporalClient(config.temporal, {
    callTimeoutMs: config.deadlines.temporalCallMs,
    breaker: circuits.temporal,
  });
  if (config.isProduction) {
    // The API verifies with the issuer key and derives SVD secrets through the KMS: both must be served at start.
    await assertActiveKeysAvailable(keyringFromConfig(config, mongo), chainClientsFromConfig(config, logger).kms, ['issuer', 'svd']);
  }

  if (config.isProduction && config.auth.apiKey) {
    // Allowed by ALLOW_BOOTSTRAP_API_KEY=true: one unscoped admin key; say so at every start until it is gone.
    logger.warn('bootstrap API_KEY accepted in production as admin of the default tenant; create scoped keys and unset it', {
      allowedBy: 'ALLOW_BOOTSTRAP_API_KEY',
    });
  }
  const verdicts = verdictCacheFromConfig({ config, redis, logger });
  const app = createApp({ config, logger, metrics, mongo, redis, temporal, verdicts, streamingMongo });
  const server: Server = app.listen(config.http.port, config.http.bind, () => {
    logger.info('api listening', { url: `http://${config.http.bind}:${config.http.port}`, env: config.env });
  });

  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info('api shutting down', { signal });
    const force = setTimeout(() => {
      logger.error('api shutdown timed out; exiting');
      process.exit(1);
    }, config.http.shutdownTimeoutMs);
    force.unref();
    server.close(() => {
      verdicts.stop();
      redis.disconnect();
      void Promise.allSettled([mongo.close(), streamingMongo.close(), temporal.connection.close()]).then(() => process.exit(0));
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  // Before the logger exists (bad config) print plainly; ConfigError lists every problem and never a value.
  process.stderr.write(
    `${err instanceof ConfigError ? err.message : `api failed to start: ${redactString(err instanceof Error ? err.message : String(err))}`}\n`,
  );
  process.exit(1);
});

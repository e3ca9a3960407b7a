import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { ConfigError, loadConfig } from '../src/config';
import { connectMongo } from '../src/db/mongo';
import { createLogger } from '../src/logging/logger';
import { redactString } from '../src/logging/redact';
import { createMetrics, watchMongoConnection } from '../src/metrics';
import { connectRedis } from '../src/redis/client';
import { temporalConnectionOptions } from '../src/temporal/connection';
import { temporalLoggerFrom } from '../src/temporal/runtimeLogger';
import { TASK_QUEUES } from '../workflows/shared/taskQueues';
import { assertSmtpConfigured, createEmailWorker, FatalStartupError, verifiedSmtpTransport } from './emailWorker';
import { installWorkerRuntime } from './lifecycle';
import { startWorkerMetricsServer } from './metricsServer';

/**
 * Entry point of the email worker (runbook "Workers (Email)"): verifies SMTP and Redis at start, exits on fatal
 * misconfiguration in production, and drains in-flight sends on SIGINT/SIGTERM.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ service: 'worker-email', deploySha: config.deploySha, level: config.log.level, format: config.log.format });
  const metrics = createMetrics({ service: 'worker-email', deploySha: config.deploySha });
  const smtp = config.ownerAuth.smtp;
  assertSmtpConfigured(config);
  // Logs only; the main worker owns the SDK's Prometheus endpoint on this host. A stop that arrives while the worker
  // is still starting (bundling, connecting) ends the process; later it drains in-flight sends.
  const lifecycle = installWorkerRuntime(
    { logger: temporalLoggerFrom(logger), telemetryOptions: { logging: { filter: { core: 'WARN', other: 'WARN' }, forward: {} } } },
    logger,
    'email worker',
  );

  // Redis is part of the platform's start contract: a worker that cannot reach it is misconfigured.
  const redis = await connectRedis(config.redis, { connectionName: 'patchproof-worker-email' }).catch((err: unknown) => {
    throw new FatalStartupError(`Redis unreachable at start: ${redactString(err instanceof Error ? err.message : String(err))}`);
  });
  redis.disconnect();

  const transport = await verifiedSmtpTransport(config, logger);

  const mongo = await connectMongo(config.mongo);
  watchMongoConnection(metrics, mongo);
  const connection = await NativeConnection.connect(await temporalConnectionOptions(config.temporal));
  const bundle =
    config.worker.workflowBundlePath ?? (config.isProduction ? path.resolve(__dirname, '..', 'workflow-bundle.js') : undefined);
  if (bundle && !existsSync(bundle)) throw new FatalStartupError(`workflow bundle not found at ${bundle}; run \`npm run build\``);

  const worker = await createEmailWorker({
    connection,
    namespace: config.temporal.namespace,
    deps: { mongo, logger, metrics, transport, from: smtp.from },
    ...(bundle && { workflowBundlePath: bundle }),
    shutdownGraceMs: config.worker.shutdownGraceMs,
    shutdownForceMs: config.worker.shutdownForceMs,
    ...(config.worker.versioning && { versioning: config.worker.versioning }),
  });
  const metricsServer = await startWorkerMetricsServer({
    registry: metrics.registry,
    port: config.worker.emailMetricsPort,
    host: config.worker.metricsHost,
  });
  logger.info('email worker started', { taskQueue: TASK_QUEUES.email, namespace: config.temporal.namespace });
  // SIGINT/SIGTERM call worker.shutdown(); run() resolves once in-flight sends have drained.
  try {
    await lifecycle.run(worker);
  } finally {
    metricsServer.close();
    transport.close();
    await Promise.allSettled([connection.close(), mongo.close()]);
    logger.info('email worker stopped');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const message =
      err instanceof ConfigError || err instanceof FatalStartupError
        ? err.message
        : `email worker failed: ${redactString(err instanceof Error ? (err.stack ?? err.message) : String(err))}`;
    process.stderr.write(`${message}\n`);
    process.exit(1);
  },
);

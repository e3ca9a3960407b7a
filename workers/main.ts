import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { type ActivityInterceptorsFactory, NativeConnection } from '@temporalio/worker';
import { activityDepsFromConfig } from '../activities';
import { ConfigError, loadConfig } from '../src/config';
import { ensureIndexes } from '../src/db/indexes';
import { registerModels } from '../src/db/models';
import { connectMongo } from '../src/db/mongo';
import { chainClientsFromConfig } from '../src/chain/clients';
import { createLogger } from '../src/logging/logger';
import { redactString } from '../src/logging/redact';
import { createMetrics, watchMongoConnection, watchRedisConnection } from '../src/metrics';
import { startScheduleMetrics } from '../src/metrics/schedules';
import { PoolMisconfiguredError, resolvePoolAccounts, verifyFundingPublicKey } from '../src/pool/accounts';
import { POOL_SCHEDULE_IDS } from '../src/pool/ids';
import { connectRedis } from '../src/redis/client';
import { keyringFromConfig } from '../src/rotation/keyring';
import { assertActiveKeysAvailable } from '../src/rotation/startup';
import { temporalConnectionOptions } from '../src/temporal/connection';
import { temporalLoggerFrom } from '../src/temporal/runtimeLogger';
import { ensureSearchAttributes } from '../src/temporal/searchAttributes';
import { TASK_QUEUES } from '../workflows/shared/taskQueues';
import { installWorkerRuntime } from './lifecycle';
import { createMainWorker } from './mainWorker';
import { assertSmtpConfigured, createEmailWorker, FatalStartupError, verifiedSmtpTransport } from './emailWorker';
import { startWorkerMetricsServer } from './metricsServer';
import { desiredSchedules, reconcileSchedules } from './schedules';
import { startChainFollower } from '../src/chainFollower/launch';

/** Entry point of the worker for the main task queue. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ service: 'worker-main', deploySha: config.deploySha, level: config.log.level, format: config.log.format });
  const metrics = createMetrics({ service: 'worker-main', deploySha: config.deploySha });

  // Must precede any NativeConnection or Worker. Routes SDK logs into winston (redacted) and exposes SDK metrics.
  // SIGINT/SIGTERM are ours from here on: during start-up they end the process, later they drain the worker.
  const lifecycle = installWorkerRuntime(
    {
      logger: temporalLoggerFrom(logger),
      telemetryOptions: {
        logging: { filter: { core: 'WARN', other: 'WARN' }, forward: {} },
        metrics: { prometheus: { bindAddress: config.temporal.metricsBindAddress }, globalTags: { deploy_sha: config.deploySha } },
      },
    },
    logger,
    'worker',
  );

  if (config.worker.emailInMain) assertSmtpConfigured(config);
  const workflowBundlePath = resolveWorkflowBundle(config.isProduction, config.worker.workflowBundlePath);

  const redis = await connectRedis(config.redis, {
    connectionName: 'patchproof-worker-main',
    onError: (err) => logger.warn('redis connection error', { err }),
  });
  const mongo = await connectMongo(config.mongo);
  mongo.on('disconnected', () => logger.warn('mongo disconnected'));
  watchMongoConnection(metrics, mongo);
  watchRedisConnection(metrics, redis);
  registerModels(mongo);
  logger.info('indexes ensured', { models: await ensureIndexes(mongo, logger) });

  const connectionOptions = await temporalConnectionOptions(config.temporal);
  const connection = await NativeConnection.connect(connectionOptions);
  const clientConnection = await Connection.connect(connectionOptions);
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });

  try {
    const added = await ensureSearchAttributes(clientConnection, config.temporal.namespace);
    if (added.length > 0) logger.info('search attributes registered', { added });
  } catch (err) {
    // Temporal Cloud registers search attributes through its own control plane; the worker can run without.
    logger.warn('could not register search attributes; register them with `temporal operator search-attribute create`', { err });
  }
  const chainClients = chainClientsFromConfig(config, logger, metrics);
  const keyring = keyringFromConfig(config, mongo);
  if (config.isProduction) {
    // Fail fast, before taking work: the active keys (env defaults, or the key settings after a rotation) must be served.
    await assertActiveKeysAvailable(keyring, chainClients.kms, ['issuer', 'funding']);
  }
  // FUNDING_PUBKEY_HEX, when set, pins the funding key: a KMS serving another key is a start-up error. A lookup
  // failure is not (the KMS checks above already cover availability in production).
  await verifyFundingPublicKey(config.pool, chainClients.kms).catch((err: unknown) => {
    if (err instanceof PoolMisconfiguredError) throw err;
    logger.warn('FUNDING_PUBKEY_HEX not checked: the funding key could not be looked up', { err });
  });
  // The nightly sweep's schedule names the change address (the rotated funding key's, after a funding rotation);
  // derive it now, or leave that schedule alone for now.
  const livePool = await keyring.livePoolConfig(config.pool);
  const accounts = await resolvePoolAccounts(livePool, chainClients.kms, chainClients.network, false).catch((err: unknown) => {
    logger.warn('pool addresses not resolved at start; the sweep schedule is left as it is', { err });
    return undefined;
  });
  await reconcileSchedules(client, desiredSchedules(config, accounts), logger, {
    keep: accounts || !config.pool.sweepCron ? [] : [POOL_SCHEDULE_IDS.sweep],
  });
  const follower = await startChainFollower(client, config);
  logger.info('chain follower', { workflowId: follower.workflowId, alreadyStarted: follower.alreadyStarted });

  const metricsServer = await startWorkerMetricsServer({
    registry: metrics.registry,
    port: config.worker.metricsPort,
    host: config.worker.metricsHost,
  });
  const stopScheduleMetrics = startScheduleMetrics({
    client,
    metrics,
    logger,
    intervalMs: config.worker.scheduleMetricsIntervalSec * 1000,
  });
  const worker = await createMainWorker({
    connection,
    namespace: config.temporal.namespace,
    deps: activityDepsFromConfig(config, { mongo, redis, logger, metrics, temporal: client }, chainClients),
    ...(workflowBundlePath && { workflowBundlePath }),
    shutdownGraceMs: config.worker.shutdownGraceMs,
    shutdownForceMs: config.worker.shutdownForceMs,
    ...(config.worker.versioning && { versioning: config.worker.versioning }),
    overrides: { maxCachedWorkflows: config.worker.maxCachedWorkflows },
    ...(config.worker.testInterceptorModule && { testActivityInterceptors: loadTestInterceptors(config.worker.testInterceptorModule) }),
  });
  // EMAIL_WORKER_IN_MAIN: small deployments serve the email task queue from this process too (one Node process,
  // one connection, one workflow bundle in memory); large ones run workers/email.ts beside it to scale it alone.
  const transport = config.worker.emailInMain ? await verifiedSmtpTransport(config, logger) : undefined;
  const emailWorker =
    transport &&
    (await createEmailWorker({
      connection,
      namespace: config.temporal.namespace,
      deps: { mongo, logger, metrics, transport, from: config.ownerAuth.smtp.from },
      ...(workflowBundlePath && { workflowBundlePath }),
      shutdownGraceMs: config.worker.shutdownGraceMs,
      shutdownForceMs: config.worker.shutdownForceMs,
      ...(config.worker.versioning && { versioning: config.worker.versioning }),
    }));
  logger.info('worker started', {
    taskQueues: emailWorker ? [TASK_QUEUES.main, TASK_QUEUES.email] : [TASK_QUEUES.main],
    namespace: config.temporal.namespace,
    prebuiltBundle: Boolean(workflowBundlePath),
    ...(config.worker.versioning && { deployment: config.worker.versioning.deploymentName, buildId: config.worker.versioning.buildId }),
  });

  // SIGINT/SIGTERM call shutdown() on each worker; run() resolves once in-flight tasks have drained.
  try {
    await lifecycle.run(worker, ...(emailWorker ? [emailWorker] : []));
  } finally {
    transport?.close();
    stopScheduleMetrics();
    metricsServer.close();
    redis.disconnect();
    await Promise.allSettled([connection.close(), clientConnection.close(), mongo.close()]);
    logger.info('worker stopped');
  }
}

/**
 * WORKER_TEST_INTERCEPTOR_MODULE (NODE_ENV=test only; the configuration refuses it elsewhere): the module's
 * `activityInterceptors`, such as the crash matrix's SIGKILL at an activity boundary.
 */
function loadTestInterceptors(modulePath: string): ActivityInterceptorsFactory[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = require(path.resolve(modulePath)) as { activityInterceptors?: ActivityInterceptorsFactory[] };
  if (!Array.isArray(loaded.activityInterceptors)) throw new Error(`${modulePath} exports no activityInterceptors array`);
  return loaded.activityInterceptors;
}

function resolveWorkflowBundle(isProduction: boolean, configured?: string): string | undefined {
  const candidate = configured ?? (isProduction ? path.resolve(__dirname, '..', 'workflow-bundle.js') : undefined);
  if (!candidate) return undefined;
  if (!existsSync(candidate)) {
    throw new Error(`workflow bundle not found at ${candidate}; run \`npm run build\` (production workers never bundle at start)`);
  }
  return candidate;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `${err instanceof ConfigError || err instanceof FatalStartupError ? err.message : `worker failed: ${redactString(err instanceof Error ? (err.stack ?? err.message) : String(err))}`}\n`,
    );
    process.exit(1);
  },
);

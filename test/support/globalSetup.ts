import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { provision, type ProvisionedTools } from '../../ops/dev-stack/provision';
import {
  freePort,
  freePorts,
  startMongoWire,
  startPrometheus,
  startRedis,
  startTemporalDevServer,
  type RunningService,
} from '../../ops/dev-stack/services';
import { PROMETHEUS_JOBS } from './prometheus';
import { ensureSearchAttributes } from '../../src/temporal/searchAttributes';
import { startSmtpCapture } from '../../ops/stand-ins/smtp-capture/server';
import { TEST_ENV, TEST_NAMESPACES } from './testEnv';

/** What globalTeardown stops and removes; Jest runs both hooks in the same process. */
export interface TestStackState {
  __patchproofServices?: RunningService[];
  __patchproofScratch?: string;
}

/**
 * Starts the services the integration tests talk to, each on a free port so `npm test` can run beside
 * `npm run dev`: a Temporal dev server (in memory, headless), FerretDB (or mongod) on a scratch directory and Redis.
 * Their addresses reach the test workers through environment variables.
 */
export default async function globalSetup(): Promise<void> {
  const tools = await provision({ purpose: 'test', say: (line) => process.stderr.write(`[test-setup] ${line}\n`) });
  const scratch = mkdtempSync(path.join(tmpdir(), 'patchproof-test-'));
  const services: RunningService[] = [];
  const state = globalThis as TestStackState;
  state.__patchproofServices = services;
  state.__patchproofScratch = scratch;
  try {
    await startServices(tools, scratch, services);
  } catch (err) {
    // Jest skips globalTeardown when globalSetup throws: stop what did start (each in its own process group, so
    // nothing else would) and remove the scratch data, then report the failure.
    await stopServices(services);
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
}

/** Stops the services in reverse start order; one that fails to stop does not keep the others running. */
export async function stopServices(services: RunningService[]): Promise<void> {
  for (let service = services.pop(); service; service = services.pop()) {
    await service.stop().catch((err: unknown) => process.stderr.write(`[test-setup] stopping ${service?.name} failed: ${String(err)}\n`));
  }
}

async function startServices(tools: ProvisionedTools, scratch: string, services: RunningService[]): Promise<void> {
  const logs = path.join(scratch, 'logs');
  if (!tools.redisServer) throw new Error('the tests need redis-server');
  const [redisPort, mongoPort, temporalPort] = (await freePorts(3)) as [number, number, number];
  services.push(await startRedis({ bin: tools.redisServer, port: redisPort, logFile: path.join(logs, 'redis.log') }));

  if (tools.mongo.kind !== 'external') {
    const dataDir = path.join(scratch, 'mongo');
    services.push(
      await startMongoWire({
        mongo: tools.mongo,
        port: mongoPort,
        dataDir,
        logFile: path.join(logs, 'mongo.log'),
      }),
    );
  }

  services.push(
    await startTemporalDevServer({
      bin: tools.temporal,
      port: temporalPort,
      uiPort: null,
      namespaces: TEST_NAMESPACES,
      logFile: path.join(logs, 'temporal.log'),
    }),
  );
  const connection = await connectWithRetry(`127.0.0.1:${temporalPort}`);
  for (const namespace of TEST_NAMESPACES) await ensureSearchAttributes(connection, namespace);
  await connection.close();

  // Bundle the workflows once; every test worker and the replay tests load this same code.
  const bundlePath = path.join(scratch, 'workflow-bundle.js');
  writeFileSync(
    bundlePath,
    (await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietBundlerLogger })).code,
  );
  process.env[TEST_ENV.workflowBundle] = bundlePath;

  process.env[TEST_ENV.temporalAddress] = `127.0.0.1:${temporalPort}`;
  process.env[TEST_ENV.mongoUri] = `mongodb://127.0.0.1:${mongoPort}`;
  process.env[TEST_ENV.redisUrl] = `redis://127.0.0.1:${redisPort}`;
  process.env[TEST_ENV.scratchDir] = scratch;
  process.env[TEST_ENV.captureDir] = path.join(scratch, 'capture');
  process.env[TEST_ENV.temporalCli] = tools.temporal;
  process.env[TEST_ENV.redisServer] = tools.redisServer;
  if (tools.temporalTestServer) process.env[TEST_ENV.timeSkippingServer] = tools.temporalTestServer;
  if (tools.chromium) process.env[TEST_ENV.chromium] = tools.chromium;
  if (tools.schemathesis) process.env[TEST_ENV.schemathesis] = tools.schemathesis;

  // Prometheus scrapes the API and worker processes that tests start and register (test/support/prometheus.ts).
  if (tools.prometheus) {
    const port = await freePort();
    const targets = path.join(scratch, 'prometheus-targets');
    services.push(
      await startPrometheus({
        bin: tools.prometheus.server,
        port,
        dataDir: path.join(scratch, 'prometheus'),
        logFile: path.join(logs, 'prometheus.log'),
        ruleFiles: [path.resolve(__dirname, '..', '..', 'ops', 'prometheus', 'alerts.yml')],
        scrapeIntervalSeconds: 1,
        targetsDir: targets,
        jobs: PROMETHEUS_JOBS.map((name) => ({
          name,
          ...(name === 'patchproof-api' && { apiKeyFile: path.join(targets, `${name}.key`) }),
        })),
      }),
    );
    process.env[TEST_ENV.prometheusUrl] = `http://127.0.0.1:${port}`;
    process.env[TEST_ENV.prometheusTargets] = targets;
  } else {
    process.env[TEST_ENV.prometheusProblem] = tools.prometheusProblem ?? 'prometheus is not installed';
  }

  // SMTP capture, in this process: tests read verification codes from the mail it received.
  const capture = await startSmtpCapture({ smtpPort: 0, httpPort: 0 });
  services.push({
    name: 'smtp-capture',
    pid: process.pid,
    port: capture.smtpPort,
    stop: () => capture.close(),
    exited: new Promise(() => undefined),
  });
  process.env[TEST_ENV.smtpPort] = String(capture.smtpPort);
  process.env[TEST_ENV.smtpCaptureUrl] = capture.httpUrl;
}

const quietBundlerLogger = new DefaultLogger('WARN');

async function connectWithRetry(address: string): Promise<Connection> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: '2s' });
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      return connection;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

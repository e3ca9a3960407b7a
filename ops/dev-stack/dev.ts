/**
 * `npm run dev`: provision what is missing, start the local services on fixed dev ports, then the API and the
 * worker with restart-on-change. Ctrl-C (or SIGTERM) stops every child and leaves nothing running.
 * `npm start` (`--built`): the same stack, but the API and the workers run the built code as production does
 * (`node dist/...` with the prebuilt workflow bundle; `npm run build` first), without restart-on-change.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ConfigError, loadConfig } from '../../src/config';
import { loadDevStackConfig, withDotEnv } from '../../src/config/devStack';
import { parseMongoUri, parseRedisUrl } from '../../src/config/urls';
import { ensureSearchAttributes } from '../../src/temporal/searchAttributes';
import { provision, ProvisionError } from './provision';
import { createDatabaseWatchdog, probeReadyDatabase } from './watchdog';
import { nodeArgs } from '../deploy/nodeOptions';
import { configuredKeyNames } from '../stand-ins/dev-kms/keyStore';
import {
  describeMongo,
  isPortOpen,
  spawnService,
  startMongoWire,
  startRedis,
  startTemporalDevServer,
  terminate,
  type RunningService,
} from './services';

const say = (line: string) => process.stderr.write(`[dev] ${line}\n`);

interface Child {
  name: string;
  process: ChildProcess;
}

/** Every service this run spawned, tracked from spawn (not from ready) so one still starting is stopped too. */
const services: RunningService[] = [];
const children: Child[] = [];
let stopping = false;

async function stopAll(code: number, signal?: NodeJS.Signals): Promise<void> {
  if (stopping) {
    // A second Ctrl-C, or a start-up step failing because its service was just stopped: the first stop finishes
    // the job (each process is SIGKILLed if it does not go in time) and exits. Exiting here would orphan services.
    if (signal) say('still stopping…');
    return;
  }
  stopping = true;
  say('stopping…');
  const alreadySignalled = signal === 'SIGINT';
  await Promise.all(children.map((c) => terminate(c.process, { alreadySignalled })));
  // Popped one by one: a service spawned while an earlier one stops is still in the list when the loop gets to it.
  for (let service = services.pop(); service; service = services.pop()) await service.stop();
  say('stopped; nothing left running');
  process.exit(code);
}

const trackFromSpawn = { onSpawn: (service: RunningService) => void services.push(service) };

async function main(): Promise<void> {
  const env = withDotEnv();
  const stack = loadDevStackConfig(env);
  const config = loadConfig(env);
  if (config.isProduction) throw new Error('npm run dev refuses NODE_ENV=production');
  const built = process.argv.includes('--built');
  const bundle = path.join(stack.repoRoot, 'dist', 'workflow-bundle.js');
  if (built && (!existsSync(path.join(stack.repoRoot, 'dist', 'api', 'server.js')) || !existsSync(bundle))) {
    throw new Error('npm start runs the built code: run `npm run build` first');
  }

  process.on('SIGINT', () => void stopAll(0, 'SIGINT'));
  process.on('SIGTERM', () => void stopAll(0, 'SIGTERM'));

  const mongoPort = loopbackMongoPort(config.mongo.uri);
  const mongoIsExternal = env.MONGODB_URI !== undefined && mongoPort === null;
  const redisUrl = parseRedisUrl(config.redis.url);
  if (!redisUrl) throw new Error('REDIS_URL is invalid');
  const tools = await provision({
    purpose: 'dev',
    config: stack,
    say: (l) => say(l),
    needRedisServer: isLoopback(redisUrl.host),
    ...(mongoIsExternal && { externalMongoUri: config.mongo.uri }),
  });

  const logs = path.join(stack.dataDir, 'logs');
  const pids = path.join(stack.dataDir, 'run');
  /**
   * Starts a service and keeps it running: one that exits by itself is started again after a backoff (1 s, doubling
   * up to 30 s, back to 1 s once it has run for a minute), so the API and workers can be watched riding through it.
   * `restart` replaces it on purpose (the database watchdog); a restart that cannot start stops the stack.
   */
  const supervise = async (start: () => Promise<RunningService>): Promise<{ restart: () => Promise<void> }> => {
    let current = await start();
    let backoffMs = 1_000;
    const watch = (running: RunningService) => {
      const startedAt = Date.now();
      void running.exited.then(async (code) => {
        if (stopping || running !== current) return;
        if (Date.now() - startedAt > 60_000) backoffMs = 1_000;
        say(
          `${running.name} exited unexpectedly (code ${code}); restarting in ${backoffMs / 1000} s; see ${path.join(logs, `${running.name}.log`)}`,
        );
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(backoffMs * 2, 30_000);
        if (stopping) return;
        try {
          current = await start();
          watch(current);
          say(`${running.name} restarted`);
        } catch (err) {
          say(`${running.name} could not be restarted (${err instanceof Error ? err.message : String(err)}); stopping the stack`);
          void stopAll(1);
        }
      });
    };
    watch(current);
    return {
      restart: async () => {
        // A frozen process handles no SIGTERM until it runs again; stop() falls back to SIGKILL after its grace.
        try {
          process.kill(current.pid, 'SIGCONT');
        } catch {
          // already gone
        }
        await current.stop();
        current = await start();
        watch(current);
      },
    };
  };

  // Redis
  const redisServer = tools.redisServer;
  if (redisServer && !(await portHeldByOther(redisUrl.port, path.join(pids, 'redis.pid')))) {
    await supervise(() =>
      startRedis({
        bin: redisServer,
        port: redisUrl.port,
        dataDir: path.join(stack.dataDir, 'redis'),
        logFile: path.join(logs, 'redis.log'),
        pidFile: path.join(pids, 'redis.pid'),
        ...trackFromSpawn,
      }),
    );
    say(`redis       redis://127.0.0.1:${redisUrl.port}`);
  } else {
    say(`redis       using the Redis already at ${redisUrl.host}:${redisUrl.port}`);
  }

  // MongoDB-wire database
  let restartDatabase: (() => Promise<void>) | undefined;
  if (tools.mongo.kind === 'external' || mongoPort === null || (await portHeldByOther(mongoPort, path.join(pids, 'mongo.pid')))) {
    say('mongodb     using the MongoDB named by MONGODB_URI');
  } else {
    const mongo = tools.mongo;
    const database = await supervise(() =>
      startMongoWire({
        mongo,
        port: mongoPort,
        durable: true,
        dataDir: path.join(stack.dataDir, describeMongo(mongo)),
        logFile: path.join(logs, 'mongo.log'),
        pidFile: path.join(pids, 'mongo.pid'),
        ...trackFromSpawn,
      }),
    );
    say(`mongodb     mongodb://127.0.0.1:${mongoPort} (${describeMongo(mongo)})`);
    restartDatabase = database.restart;
  }

  // Stand-ins for the external services, each on the port its URL names, unless the URL points elsewhere.
  const startStandIn = async (name: string, url: string, entry: string, args: string[]) => {
    const { hostname, port } = new URL(url);
    const pidFile = path.join(pids, `${name}.pid`);
    if (!isLoopback(hostname) || (await portHeldByOther(Number(port), pidFile))) return;
    await supervise(() =>
      spawnService({
        name,
        command: process.execPath,
        args: ['--import', 'tsx', path.join(stack.repoRoot, entry), '--port', port, ...args],
        identity: entry,
        port: Number(port),
        logFile: path.join(logs, `${name}.log`),
        pidFile,
        ...trackFromSpawn,
      }),
    );
  };
  await startStandIn('dev-kms', config.kms.signUrl, 'ops/stand-ins/dev-kms/main.ts', [
    '--data-dir',
    path.join(stack.dataDir, 'dev-kms'),
    '--api-key',
    config.kms.apiKey,
    // The configured keys are provisioned explicitly; any other key (a rotation's target) must be created first.
    ...configuredKeyNames(config).flatMap((name) => ['--create-key', name]),
  ]);
  // SMTP capture: the email worker's relay in dev; read received mail at its HTTP port.
  if (config.ownerAuth.smtp.host) {
    await startStandIn(
      'smtp-capture',
      `smtp://${config.ownerAuth.smtp.host}:${config.ownerAuth.smtp.port}`,
      'ops/stand-ins/smtp-capture/main.ts',
      ['--http-port', String(stack.smtpCaptureHttpPort)],
    );
  }
  // Mines a block every 30 s, like a (fast) chain; its state survives restarts in the data dir.
  await startStandIn('chain-simulator', config.woc.baseUrl, 'ops/stand-ins/chain-simulator/main.ts', [
    '--network',
    config.woc.network,
    '--block-interval-ms',
    '30000',
    '--persist-file',
    path.join(stack.dataDir, 'chain-simulator', 'chains.json'),
  ]);
  // Webhook receiver: register http://127.0.0.1:<port>/hooks/<name> as an endpoint; it prints each delivery.
  await startStandIn('webhook-receiver', `http://127.0.0.1:${stack.webhookReceiverPort}`, 'ops/stand-ins/webhook-receiver/main.ts', []);
  // NTAG 424 DNA tags in SUN mode, keyed by the dev KMS: `patchproof tag simulate <uid>` prints their tap URLs.
  await startStandIn('tag-simulator', config.tags.simulatorUrl, 'ops/stand-ins/tag-simulator/main.ts', [
    '--data-dir',
    path.join(stack.dataDir, 'tag-simulator'),
  ]);

  // Temporal dev server with a persistent db and the Web UI
  const temporalPort = Number(config.temporal.address.split(':').pop());
  if (await portHeldByOther(temporalPort, path.join(pids, 'temporal.pid'))) {
    say(`temporal    using the server already at ${config.temporal.address}`);
  } else {
    await supervise(() =>
      startTemporalDevServer({
        bin: tools.temporal,
        port: temporalPort,
        uiPort: stack.temporalUiPort,
        dbFile: path.join(stack.dataDir, 'temporal', 'dev.db'),
        namespaces: [config.temporal.namespace],
        logFile: path.join(logs, 'temporal.log'),
        pidFile: path.join(pids, 'temporal.pid'),
        ...trackFromSpawn,
      }),
    );
  }
  const connection = await Connection.connect({ address: config.temporal.address });
  const added = await ensureSearchAttributes(connection, config.temporal.namespace);
  if (added.length > 0) say(`temporal    registered search attributes ${added.join(', ')}`);
  await connection.close();
  // Ctrl-C while the services were starting: stopAll owns the exit; start nothing more.
  if (stopping) return;

  // API and workers: under `tsx watch` (restarted when their sources change), or built (`--built`). With
  // EMAIL_WORKER_IN_MAIN=true the main worker also serves the email task queue, so no email worker process starts.
  // Backups of the dev database land beside its data unless BACKUP_DIR says otherwise.
  const childEnv = {
    BACKUP_DIR: path.join(stack.dataDir, 'backups'),
    // The receiver stand-in is plain http on loopback; production refuses the flag.
    ...(!config.isProduction && { WEBHOOK_ALLOW_LOOPBACK_HTTP: 'true' }),
    ...(built && { WORKFLOW_BUNDLE_PATH: bundle }),
    ...env,
    NODE_ENV: config.env,
    FORCE_COLOR: '1',
  };
  const tsx = path.join(stack.repoRoot, 'node_modules', '.bin', 'tsx');
  const entries = [
    ['api', 'api/server'],
    ['worker', 'workers/main'],
    ...(config.worker.emailInMain ? [] : [['email-worker', 'workers/email'] as const]),
  ] as const;
  for (const [name, entry] of entries) {
    const child = built
      ? spawn(process.execPath, [...(name === 'api' ? nodeArgs('api') : []), path.join('dist', `${entry}.js`)], {
          cwd: stack.repoRoot,
          env: childEnv,
          stdio: 'inherit',
        })
      : spawn(tsx, ['watch', '--clear-screen=false', `${entry}.ts`], { cwd: stack.repoRoot, env: childEnv, stdio: 'inherit' });
    children.push({ name, process: child });
    child.on('exit', (code) => {
      if (!stopping) {
        say(`${name} exited (code ${code}); stopping the stack`);
        void stopAll(1);
      }
    });
  }

  const apiBase = `http://${config.http.bind === '0.0.0.0' ? '127.0.0.1' : config.http.bind}:${config.http.port}`;
  const ready = await waitForReady(`${apiBase}/ready`, 120_000, () => stopping);
  if (restartDatabase) {
    const restart = restartDatabase;
    createDatabaseWatchdog({
      probe: () => probeReadyDatabase(`${apiBase}/ready`),
      restart: () => (stopping ? Promise.resolve() : restart()),
      say,
    }).start();
  }
  say('');
  const what = built ? 'PatchProof stack (built code)' : 'PatchProof dev stack';
  say(ready ? `${what} is up:` : `${what} started, but /ready has not answered 200 yet:`);
  say(`  API              ${apiBase}`);
  say(`  API docs         ${apiBase}/docs`);
  say(`  Readiness        ${apiBase}/ready`);
  say(`  Temporal Web UI  http://127.0.0.1:${stack.temporalUiPort}`);
  say(`  Temporal gRPC    ${config.temporal.address} (namespace ${config.temporal.namespace})`);
  say(`  Dev KMS          ${config.kms.signUrl}`);
  say(
    `  SMTP capture     smtp://${config.ownerAuth.smtp.host ?? '(SMTP_HOST unset)'}:${config.ownerAuth.smtp.port}, mail at http://127.0.0.1:${stack.smtpCaptureHttpPort}/messages`,
  );
  say(`  Webhook receiver http://127.0.0.1:${stack.webhookReceiverPort}/hooks/<name>, deliveries at /deliveries`);
  say(`  Chain simulator  ${config.woc.baseUrl}/v1/bsv/${config.woc.network} (WhatsOnChain API; admin at /admin)`);
  say(`  Dev API key      x-api-key: ${config.auth.apiKey === env.API_KEY ? '(from your environment)' : config.auth.apiKey}`);
  say(`  Logs and data    ${stack.dataDir}`);
  say('Press Ctrl-C to stop everything.');
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1';
}

/** The port of a single-host loopback mongodb:// URI (the dev stack can serve it), else null. */
function loopbackMongoPort(uri: string): number | null {
  const parsed = parseMongoUri(uri);
  if (!parsed || parsed.scheme !== 'mongodb' || parsed.hosts.length !== 1) return null;
  const [host, port] = parsed.hosts[0]!.split(':');
  return isLoopback(host!) ? Number(port ?? 27017) : null;
}

/** A port held by something other than a stale process of ours (which the service runner replaces). */
async function portHeldByOther(port: number, pidFile: string): Promise<boolean> {
  return !existsSync(pidFile) && (await isPortOpen(port));
}

async function waitForReady(url: string, timeoutMs: number, cancelled: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !cancelled()) {
    try {
      const response = await fetch(url);
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

main().catch((err: unknown) => {
  // While stopping, a start-up step fails because its service was stopped under it; that is not news.
  if (stopping) return;
  const message = err instanceof ConfigError || err instanceof ProvisionError || err instanceof Error ? err.message : String(err);
  say(`failed: ${message}`);
  void stopAll(1);
});

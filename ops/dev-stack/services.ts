/**
 * Starting and stopping the local services of the dev and test stack: Temporal dev server, the MongoDB-wire
 * database (FerretDB or mongod) and Redis. Each runner waits until its service answers and returns a handle that
 * stops it; nothing is left running after stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { MongoProvision, PostgresTools } from './provision';

export interface RunningService {
  name: string;
  pid: number;
  port: number;
  /** `alreadySignalled`: the process got the terminal's SIGINT with its group; wait before signalling again. */
  stop(options?: { alreadySignalled?: boolean }): Promise<void>;
  /** Resolves when the process exits by itself (a crash); stop() does not resolve it. */
  exited: Promise<number | null>;
}

export interface SpawnServiceOptions {
  name: string;
  command: string;
  args: string[];
  port: number;
  logFile: string;
  /** Pid file: a stale process left by an earlier run is stopped before starting. */
  pidFile?: string;
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Text the command line of a stale process of this service contains (default: the command's file name). */
  identity?: string;
  /**
   * Called as soon as the process exists, before it answers: a caller that must stop everything on Ctrl-C (dev.ts)
   * tracks it from here, so a service still starting is stopped too rather than left running in its own group.
   */
  onSpawn?: (service: RunningService) => void;
  /** Run as this account (root only), for servers that refuse to run as root. */
  uid?: number;
  gid?: number;
}

/** The spawn hook, for the runners of particular services. */
export type SpawnHook = Pick<SpawnServiceOptions, 'onSpawn'>;

export async function spawnService(options: SpawnServiceOptions): Promise<RunningService> {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  if (options.pidFile) await stopStaleProcess(options.pidFile, options.identity ?? path.basename(options.command));
  if (await isPortOpen(options.port)) {
    throw new Error(`${options.name}: port ${options.port} is already in use; stop what holds it or choose another port`);
  }
  const log = createWriteStream(options.logFile, { flags: 'a' });
  // Own process group: Ctrl-C in the terminal reaches the API and worker, which drain while their databases are
  // still up; the services are stopped after them, in order.
  const child = spawn(options.command, options.args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    ...(options.uid !== undefined && { uid: options.uid }),
    ...(options.gid !== undefined && { gid: options.gid }),
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${options.command}`);
  if (options.pidFile) {
    mkdirSync(path.dirname(options.pidFile), { recursive: true });
    writeFileSync(options.pidFile, `${child.pid}\n`);
  }

  let stopping: Promise<void> | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      if (!stopping) resolve(code);
    });
  });
  // Idempotent: the owner and a failed start may both stop the same process.
  const stop = (stopOptions: { alreadySignalled?: boolean } = {}): Promise<void> =>
    (stopping ??= (async () => {
      await terminate(child, stopOptions);
      log.end();
      if (options.pidFile) rmSync(options.pidFile, { force: true });
    })());
  const pid = child.pid;
  options.onSpawn?.({ name: options.name, pid, port: options.port, stop, exited });

  try {
    await waitForPort(options.port, options.readyTimeoutMs ?? 30_000, child);
  } catch (err) {
    await stop();
    const tail = existsSync(options.logFile) ? readFileSync(options.logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
    throw new Error(`${options.name} did not start: ${(err as Error).message}\n--- ${options.logFile} ---\n${tail}`);
  }
  return { name: options.name, pid, port: options.port, stop, exited };
}

export interface TemporalDevServerOptions extends SpawnHook {
  bin: string;
  port: number;
  /** Web UI port, or null for a headless server (tests). */
  uiPort: number | null;
  /** Persistent SQLite file; omitted means in-memory. */
  dbFile?: string;
  /** Namespaces to create at start ("default" always exists). */
  namespaces: string[];
  logFile: string;
  pidFile?: string;
}

export function startTemporalDevServer(options: TemporalDevServerOptions): Promise<RunningService> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port)];
  for (const namespace of options.namespaces) args.push('--namespace', namespace);
  args.push('--log-format', 'json', '--log-level', 'warn');
  args.push(...(options.uiPort === null ? ['--headless'] : ['--ui-port', String(options.uiPort)]));
  if (options.dbFile) {
    mkdirSync(path.dirname(options.dbFile), { recursive: true });
    // Temporal's SQLite persistence uses one connection; without these pragmas throughput collapses (~10 wf/s).
    args.push('--db-filename', options.dbFile, '--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=OFF');
  }
  args.push('--dynamic-config-value', 'frontend.enableServerVersionCheck=false');
  return spawnService({
    name: 'temporal',
    command: options.bin,
    args,
    ...serviceBasics(options),
    readyTimeoutMs: 60_000,
  });
}

export interface MongoWireOptions extends SpawnHook {
  /** What provisioning found: mongod, or FerretDB on SQLite or on PostgreSQL. */
  mongo: Exclude<MongoProvision, { kind: 'external' }>;
  port: number;
  dataDir: string;
  logFile: string;
  pidFile?: string;
  /** Test stacks trade durability for speed (no fsync); dev keeps its data across crashes. */
  durable?: boolean;
  /**
   * FerretDB's PostgreSQL server's port (default: a free one). A caller that stops and starts the database again on
   * the same data directory (the restart bench) passes the same port each time.
   */
  postgresPort?: number;
}

/**
 * Starts the MongoDB-wire database: a real mongod, or FerretDB on SQLite, or FerretDB on a PostgreSQL server it
 * owns. In the last case both processes are one service: stop() stops FerretDB then PostgreSQL, and `exited`
 * resolves when either dies.
 */
export async function startMongoWire(options: MongoWireOptions): Promise<RunningService> {
  mkdirSync(options.dataDir, { recursive: true });
  const common = serviceBasics(options);
  const { mongo } = options;
  if (mongo.kind === 'mongod') {
    const args = ['--bind_ip', '127.0.0.1', '--port', String(options.port), '--dbpath', options.dataDir, '--quiet'];
    return spawnService({ name: 'mongod', command: mongo.bin, args, ...common });
  }
  const ferretArgs = ['--listen-addr', `127.0.0.1:${options.port}`, '--log-level', 'warn'];
  if (mongo.backend === 'sqlite') {
    return spawnService({ name: 'ferretdb', command: mongo.bin, args: [...ferretArgs, '--sqlite-dir', options.dataDir], ...common });
  }
  const postgres = await startPostgres({
    tools: mongo.postgres,
    port: options.postgresPort ?? (await freePort()),
    dataDir: path.join(options.dataDir, 'postgresql'),
    logFile: options.logFile.replace(/(\.log)?$/, '-postgresql.log'),
    ...(options.pidFile && { pidFile: options.pidFile.replace(/(\.pid)?$/, '-postgresql.pid') }),
    ...(options.onSpawn && { onSpawn: options.onSpawn }),
    durable: options.durable ?? false,
  });
  let ferret: RunningService;
  try {
    // A pool of 100 (FerretDB's default is 50): every update statement and every open cursor holds a connection,
    // and src/db/bulkWrites.ts keeps each process's share of them bounded (docs/ARCHITECTURE.md).
    const url = `postgres://postgres@127.0.0.1:${postgres.port}/postgres?pool_max_conns=100`;
    ferret = await spawnService({ name: 'ferretdb', command: mongo.bin, args: [...ferretArgs, '--postgresql-url', url], ...common });
  } catch (err) {
    await postgres.stop();
    throw err;
  }
  return {
    name: 'ferretdb',
    pid: ferret.pid,
    port: ferret.port,
    exited: Promise.race([ferret.exited, postgres.exited]),
    stop: async (stopOptions) => {
      await ferret.stop(stopOptions);
      await postgres.stop(stopOptions);
    },
  };
}

/** How a started MongoDB-wire database is named in logs and dev data: `mongod`, `ferretdb` or `ferretdb-postgresql`. */
export function describeMongo(mongo: Exclude<MongoProvision, { kind: 'external' }>): string {
  if (mongo.kind === 'mongod') return 'mongod';
  // SQLite keeps the name it had before the PostgreSQL backend existed, so existing dev data stays where it was.
  return mongo.backend === 'sqlite' ? 'ferretdb' : 'ferretdb-postgresql';
}

export interface PostgresOptions extends SpawnHook {
  tools: PostgresTools;
  port: number;
  dataDir: string;
  logFile: string;
  pidFile?: string;
  durable: boolean;
}

/**
 * A private PostgreSQL server on loopback, with trust authentication for its one local user. PostgreSQL refuses
 * to run as root, so as root it runs as the `postgres` account that Debian's package creates.
 */
export async function startPostgres(options: PostgresOptions): Promise<RunningService> {
  const account = postgresAccount();
  const { dataDir } = options;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (account) {
    // The server account must reach its data directory, which may sit in a private (0700) scratch directory: each
    // ancestor gets the search bit only (o+x), never read.
    for (let dir = path.dirname(dataDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const mode = statSync(dir).mode;
      if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
    }
    chownSync(dataDir, account.uid, account.gid);
  }
  chmodSync(dataDir, 0o700);
  const asAccount = account ? { uid: account.uid, gid: account.gid, env: { ...process.env, HOME: dataDir } } : {};
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    const init = await runToEnd(
      options.tools.initdb,
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-instructions'],
      asAccount,
    );
    if (!init.ok) throw new Error(`postgresql: initdb failed: ${init.output}`);
  }
  const settings = [
    `listen_addresses=127.0.0.1`,
    `unix_socket_directories=${dataDir}`,
    // FerretDB's pool of 100, with room for psql and the checks beside it.
    'max_connections=130',
    'synchronous_commit=off',
    ...(options.durable ? [] : ['fsync=off', 'full_page_writes=off']),
  ];
  const server = await spawnService({
    name: 'postgresql',
    command: options.tools.server,
    args: ['-D', dataDir, '-p', String(options.port), ...settings.flatMap((setting) => ['-c', setting])],
    ...serviceBasics(options),
    identity: 'postgres',
    ...(account && { uid: account.uid, gid: account.gid }),
  });
  const installTwins = () =>
    runToEnd(options.tools.psql, [
      ...['-h', '127.0.0.1', '-p', String(options.port), '-U', 'postgres', '-d', 'postgres'],
      ...['-q', '-v', 'ON_ERROR_STOP=1', '-c', GIN_TWIN_SQL],
    ]);
  // The port opens before the server accepts sessions: while it replays its log it answers "starting up".
  let twins = await installTwins();
  for (const until = Date.now() + 60_000; !twins.ok && /starting up/.test(twins.output) && Date.now() < until;) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    twins = await installTwins();
  }
  if (!twins.ok) {
    await server.stop();
    throw new Error(`postgresql: installing the index twins failed: ${twins.output}`);
  }
  return server;
}

/**
 * FerretDB's PostgreSQL backend pushes an equality filter down as `_jsonb -> 'field' @> value`, but it indexes
 * fields with btree indexes on `_jsonb -> 'field'`, which `@>` cannot use: every lookup scanned the table (40 ms at
 * 100,000 documents). An event trigger gives each btree index FerretDB creates a GIN twin on the same expression,
 * which `@>` uses (2 ms). Without GIN's pending list (`fastupdate`), which every search would scan until a vacuum
 * merged it: a collection filled moments ago is searched as fast as an old one. The backfill covers indexes made
 * before the trigger existed. Idempotent.
 */
const GIN_TWIN_SQL = `
CREATE OR REPLACE FUNCTION patchproof_gin_twin(index_oid oid) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  idx record;
  expr text;
  k int;
BEGIN
  SELECT i.indexrelid, i.indnatts, am.amname, c.relname AS index_name, n.nspname, t.relname AS table_name
    INTO idx
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
   WHERE i.indexrelid = index_oid;
  IF NOT FOUND OR idx.amname <> 'btree' THEN
    RETURN;
  END IF;
  FOR k IN 1..idx.indnatts LOOP
    expr := pg_get_indexdef(idx.indexrelid, k, true);
    CONTINUE WHEN expr NOT LIKE '(_jsonb %';
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
                   left(idx.index_name, 54) || '_gin' || k, idx.nspname, idx.table_name, expr);
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION patchproof_gin_twins() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX' LOOP
    PERFORM patchproof_gin_twin(cmd.objid);
  END LOOP;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS patchproof_gin_twins;
CREATE EVENT TRIGGER patchproof_gin_twins ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION patchproof_gin_twins();

SELECT patchproof_gin_twin(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
 WHERE am.amname = 'btree' AND pg_get_indexdef(i.indexrelid) LIKE '%(_jsonb %';
`;

/**
 * Runs a set-up command to its end in its own process group, so a Ctrl-C meant for the dev stack does not kill it
 * half-way (the stack stops once the step is done) and the event loop keeps serving signals meanwhile.
 */
function runToEnd(
  command: string,
  args: string[],
  options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, output: err.message });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, output: code === 0 ? output : `${output.trim() || 'no output'} (exit ${code ?? signal})` });
    });
  });
}

/** The `postgres` account when this process is root (PostgreSQL will not run as root), else none. */
function postgresAccount(): { uid: number; gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  if (!line) throw new Error('postgresql: running as root, but there is no postgres account to run the server as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export function startRedis(
  options: {
    bin: string;
    port: number;
    dataDir?: string;
    logFile: string;
    pidFile?: string;
    /** Require this password (`--requirepass`), as a production Redis does. It shows in the process list: tests only. */
    password?: string;
  } & SpawnHook,
): Promise<RunningService> {
  const args = ['--bind', '127.0.0.1', '--port', String(options.port), '--appendonly', 'no'];
  if (options.password) args.push('--requirepass', options.password);
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    args.push('--dir', options.dataDir, '--save', '60 1');
  } else {
    args.push('--save', '');
  }
  return spawnService({
    name: 'redis',
    command: options.bin,
    args,
    ...serviceBasics(options),
  });
}

export interface PrometheusOptions {
  bin: string;
  port: number;
  dataDir: string;
  logFile: string;
  /** Rule files loaded as they are (e.g. ops/prometheus/alerts.yml), so their expressions are evaluated live. */
  ruleFiles?: string[];
  scrapeIntervalSeconds?: number;
  /**
   * Scrape targets come from file discovery: `<targetsDir>/<job>-*.json` for each job, written while Prometheus
   * runs (processes on ephemeral ports register themselves). `<targetsDir>/<job>.key` holds the job's API key.
   */
  targetsDir: string;
  jobs: { name: string; apiKeyFile?: string }[];
}

/** A Prometheus server scraping local processes found through file discovery. */
export function startPrometheus(options: PrometheusOptions): Promise<RunningService> {
  mkdirSync(options.dataDir, { recursive: true });
  mkdirSync(options.targetsDir, { recursive: true });
  const interval = `${options.scrapeIntervalSeconds ?? 15}s`;
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: options.jobs.map((job) => ({
      job_name: job.name,
      scrape_timeout: interval,
      ...(job.apiKeyFile && { authorization: { type: 'ApiKey', credentials_file: job.apiKeyFile } }),
      file_sd_configs: [{ files: [path.join(options.targetsDir, `${job.name}-*.json`)], refresh_interval: '1s' }],
    })),
  };
  // JSON is YAML: no YAML writer needed.
  const configFile = path.join(options.dataDir, 'prometheus.yml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return spawnService({
    name: 'prometheus',
    command: options.bin,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(options.dataDir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${options.port}`,
      '--storage.tsdb.retention.time=1d',
      '--log.level=warn',
    ],
    port: options.port,
    logFile: options.logFile,
  });
}

/** What every runner passes on to spawnService unchanged: port, log file, pid file and spawn hook. */
function serviceBasics(options: Pick<SpawnServiceOptions, 'port' | 'logFile' | 'pidFile' | 'onSpawn'>) {
  return {
    port: options.port,
    logFile: options.logFile,
    ...(options.pidFile && { pidFile: options.pidFile }),
    ...(options.onSpawn && { onSpawn: options.onSpawn }),
  };
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function isPortOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Asks the OS for `count` distinct free TCP ports on loopback, holding each until all are known. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Asks the OS for a free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process exited (${child.exitCode ?? child.signalCode})`);
    if (await isPortOpen(port)) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
}

/**
 * Stops a child and resolves once it is gone: SIGTERM, then SIGKILL after a grace period. When the child already
 * got a signal (Ctrl-C reaches the whole foreground process group) it first gets a few seconds to exit by itself,
 * because a second signal makes some tools (tsx watch) kill their own children without a clean shutdown.
 */
export function terminate(child: ChildProcess, options: { alreadySignalled?: boolean; graceMs?: number } = {}): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const graceMs = options.graceMs ?? 10_000;
  return new Promise((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    child.once('exit', () => {
      timers.forEach(clearTimeout);
      resolve();
    });
    const sigterm = () => child.kill('SIGTERM');
    if (options.alreadySignalled) timers.push(setTimeout(sigterm, 5_000));
    else sigterm();
    timers.push(setTimeout(() => child.kill('SIGKILL'), (options.alreadySignalled ? 5_000 : 0) + graceMs));
  });
}

/** Stops a process recorded in a pid file by an earlier run that did not shut down, if it is still ours. */
async function stopStaleProcess(pidFile: string, identity: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 0) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // not running
  }
  if (!cmdline.includes(identity)) return; // the pid was reused by something else
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    if (!existsSync(`/proc/${pid}`)) return;
  }
  process.kill(pid, 'SIGKILL');
}

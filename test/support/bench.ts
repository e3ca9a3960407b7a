import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import autocannon, { type Request as CannonRequest } from 'autocannon';
import { freePort } from '../../ops/dev-stack/services';
import { nodeArgs as productionNodeArgs } from '../../ops/deploy/nodeOptions';
import { REPO_ROOT, spawnEntry } from './processes';
import { waitFor } from './workerProcesses';

/**
 * What the benchmarks under test/bench/ share: the built API as its own process (production runs `node dist/...`,
 * not tsx), autocannon loads with their figures, the API's own metrics, and the resident memory of a process.
 */

const SOURCE_DIRS = ['src', 'api', 'workers', 'activities', 'workflows'];

/** Throws unless `npm run build` has produced dist/; warns when a source file is newer than the build. */
export function requireBuiltCode(): void {
  const marker = path.join(REPO_ROOT, 'dist', 'api', 'server.js');
  if (!existsSync(marker) || !existsSync(path.join(REPO_ROOT, 'dist', 'workflow-bundle.js'))) {
    throw new Error('the benchmarks run the built code: run `npm run build` first');
  }
  const builtAt = statSync(marker).mtimeMs;
  const newer = SOURCE_DIRS.flatMap((dir) => newerThan(path.join(REPO_ROOT, dir), builtAt));
  if (newer.length > 0) {
    process.stderr.write(`warning: ${newer.length} source file(s) changed after the build (${newer[0]}); run \`npm run build\`\n`);
  }
}

function newerThan(dir: string, mtimeMs: number): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return newerThan(full, mtimeMs);
    return entry.name.endsWith('.ts') && statSync(full).mtimeMs > mtimeMs ? [path.relative(REPO_ROOT, full)] : [];
  });
}

export interface BuiltProcess {
  url: string;
  child: ChildProcess;
  /** Resident set size now, in MB. */
  rssMb(): number;
  /** CPU time (user + system) the process has used so far, in ms. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** Starts `node dist/api/server.js` on a free port with `env` and waits until /health answers. */
export async function startBuiltApi(env: Record<string, string>): Promise<BuiltProcess & { lastOutput(): string }> {
  const port = await freePort();
  // Production's flags; BENCH_API_NODE_ARGS (for example "--cpu-prof --cpu-prof-dir=/tmp/prof") adds to them.
  const nodeArgs = [...productionNodeArgs('api'), ...(process.env.BENCH_API_NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
  const child = spawnEntry('dist/api/server.js', [], { ...env, PORT: String(port), BIND: '127.0.0.1' }, nodeArgs);
  const url = `http://127.0.0.1:${port}`;
  const api = trackBuilt(child, url);
  await waitFor('the built API to answer /health', async () => ((await fetch(`${url}/health`)).ok ? true : undefined), 60_000, {
    ignoreErrors: true,
    intervalMs: 200,
    context: () => api.lastOutput(),
  });
  return api;
}

/** Drains a built process's output (a full pipe would block it) and keeps the tail for error reports. */
export function trackBuilt(child: ChildProcess, url = ''): BuiltProcess & { lastOutput(): string } {
  let tail = '';
  const keep = (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return {
    url,
    child,
    rssMb: () => rssMb(child.pid),
    cpuMs: () => cpuMs(child.pid),
    lastOutput: () => tail,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** VmRSS of a process, in MB (Linux); NaN when it cannot be read. */
export function rssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** User + system CPU time of a process so far, in ms (Linux: /proc/<pid>/stat, in clock ticks of 10 ms). */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

export interface LoadResult {
  name: string;
  requests: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

export interface LoadOptions {
  url: string;
  seconds: number;
  connections: number;
  /** The next request; called once per request. Defaults to GET of `paths` in turn. */
  next?: () => { method: 'GET' | 'POST'; path: string; body?: string; headers?: Record<string, string> };
  paths?: string[];
  /** Headers for every request of `paths`, such as the API key of an admin route. */
  headers?: Record<string, string>;
  /** A fixed total rate (req/s) instead of as fast as the connections go. */
  rate?: number;
  /** A fixed number of requests instead of `seconds`. */
  amount?: number;
}

/** One autocannon load, summarised. */
export async function load(name: string, options: LoadOptions): Promise<LoadResult> {
  let i = 0;
  const paths = options.paths ?? ['/'];
  const next =
    options.next ??
    (() => ({ method: 'GET' as const, path: paths[i++ % paths.length]!, ...(options.headers && { headers: options.headers }) }));
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.seconds }),
    ...(options.rate !== undefined && { overallRate: options.rate }),
    requests: [{ setupRequest: (req: CannonRequest) => ({ ...req, ...next() }) }],
  });
  return {
    name,
    requests: result.requests.total,
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

/** The load results as a table: requests, req/s, p50, p99, non-2xx, errors. */
export function printLoads(rows: LoadResult[], say: (line: string) => void): void {
  const width = Math.max(14, ...rows.map((r) => r.name.length + 2));
  say(
    `${'route'.padEnd(width)}${pad('requests', 10)}${pad('req/s', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('non-2xx', 9)}${pad('errors', 8)}`,
  );
  for (const r of rows) {
    say(
      `${r.name.padEnd(width)}${pad(r.requests, 10)}${pad(r.reqPerSec.toFixed(0), 9)}${pad(r.p50, 8)}${pad(r.p99, 8)}${pad(r.non2xx, 9)}${pad(r.errors, 8)}`,
    );
  }
}

/** The API's Prometheus text (the metrics route needs the API key unless configured otherwise). */
export async function metricsText(apiUrl: string, apiKey: string): Promise<string> {
  return (await fetch(`${apiUrl}/metrics`, { headers: { 'x-api-key': apiKey } })).text();
}

/** Sum of the samples of `name` whose labels include every `labels` pair. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => wanted.every((pair) => line.includes(pair)))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/** The distinct values of `label` among the samples of `name`. */
export function labelValues(text: string, name: string, label: string): string[] {
  const pattern = new RegExp(`^${name}\\{[^}]*${label}="([^"]+)"`);
  return [...new Set(text.split('\n').flatMap((line) => pattern.exec(line)?.[1] ?? []))];
}

/** Runs a bench's main and exits: 0 when it printed its figures, 1 with the error otherwise. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

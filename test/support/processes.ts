import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../ops/dev-stack/services';
import { captureChildOutput, registerSecrets } from './runCapture';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const CLI_ENTRY = 'ops/cli/patchproof.ts';

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a TypeScript entry point of this repo as its own Node process, the way the npm scripts do; or, for a `.js`
 * entry under dist/ (`npm run build`), the compiled code as production runs it.
 */
export function spawnEntry(entry: string, args: string[], env: Record<string, string>, nodeArgs: string[] = []): ChildProcess {
  const loader = entry.endsWith('.js') ? [] : ['--import', 'tsx'];
  registerSecrets(env);
  const child = spawn(process.execPath, [...nodeArgs, ...loader, path.join(REPO_ROOT, entry), ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  captureChildOutput(child, path.basename(entry), { answerOnStdout: entry === CLI_ENTRY });
  return child;
}

/** A spawned entry point whose output is drained (a full pipe would block it) and whose tail is kept for reports. */
export interface TrackedProcess {
  child: ChildProcess;
  /** The last `keepChars` characters it wrote to stdout and stderr. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnTracked(entry: string, env: Record<string, string>, keepChars = 8000): TrackedProcess {
  const child = spawnEntry(entry, [], env);
  let tail = '';
  const keep = (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-keepChars));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => tail, exited };
}

export function runEntry(entry: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Finished> {
  return finished(spawnEntry(entry, args, env), `${entry} ${args.join(' ')}`, timeoutMs);
}

/** The real npm bin, as an operator runs it (`npx patchproof …`), in its own process. */
export function runPatchproof(args: string[], env: Record<string, string>, timeoutMs = 90_000): Promise<Finished> {
  registerSecrets(env);
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'ops/cli/bin.cjs'), ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
  });
  captureChildOutput(child, `patchproof-${args[0] ?? 'cli'}`, { answerOnStdout: true });
  return finished(child, `patchproof ${args.join(' ')}`, timeoutMs);
}

/** Collects a process's output until it exits; one that outlives `timeoutMs` is killed and reported. */
function finished(child: ChildProcess, what: string, timeoutMs: number): Promise<Finished> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface SpawnedService {
  baseUrl: string;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts a stand-in's entry point (dev KMS, chain simulator) as its own process on a free loopback port and resolves
 * once `readyPath` answers 2xx, so tests exercise its real CLI flags and wiring.
 */
export async function spawnService(entry: string, args: string[], readyPath: string, timeoutMs = 30_000): Promise<SpawnedService> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawnEntry(entry, ['--port', String(port), ...args], { NODE_ENV: 'development' });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    const code = await exited;
    clearTimeout(killer);
    return code;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${entry} exited with ${child.exitCode} before it was ready:\n${output}`);
    try {
      if ((await fetch(`${baseUrl}${readyPath}`)).ok) return { baseUrl, child, stop };
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${entry} did not answer ${readyPath} within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

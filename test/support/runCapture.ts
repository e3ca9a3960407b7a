import { appendFileSync, createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { isSecretField } from '../../src/logging/redact';
import { TEST_ENV } from './testEnv';

/**
 * The integration run's capture directory (globalSetup sets PATCHPROOF_TEST_CAPTURE_DIR): every log line a test
 * process writes through CapturedLogs and the stdout and stderr of every process the tests start land there, with
 * the secret values the tests configured. globalTeardown scans it all (test/support/secretsScan.ts). Outside an
 * integration run (benches, the unit project) nothing is written.
 */
export function captureDir(): string | undefined {
  return process.env[TEST_ENV.captureDir] || undefined;
}

let sequence = 0;
let madeDir: string | undefined;

function ensureDir(dir: string): void {
  if (madeDir === dir) return;
  mkdirSync(dir, { recursive: true });
  madeDir = dir;
}

let testFile: string | undefined;

/**
 * The test file running in this Jest worker, so a finding names the file that produced it. Read once, while the file
 * runs: Jest removes its globals once the file is done, and output can still arrive after that. This module is
 * loaded anew for each test file.
 */
function currentTestFile(): string {
  if (testFile === undefined) {
    const state = (globalThis as { expect?: { getState?: () => { testPath?: string } } }).expect?.getState?.();
    testFile = state?.testPath ? path.basename(state.testPath).replace(/\.test\.ts$/, '') : 'setup';
  }
  return testFile;
}

function safe(label: string): string {
  return label.replace(/[^A-Za-z0-9_.-]+/g, '_');
}

/** A file name unique to this process and call: `<test file>.<label>-<pid>-<n>`. */
function captureFile(label: string, extension: string): string | undefined {
  const dir = captureDir();
  if (!dir) return undefined;
  ensureDir(dir);
  sequence += 1;
  return path.join(dir, `${safe(currentTestFile())}.${safe(label)}-${process.pid}-${sequence}.${extension}`);
}

/**
 * Appends one log line of this test process, to a file named after the test file running, or after `source` for
 * output that outlives one file (the Temporal runtime's logger lives as long as the Jest worker).
 */
export function captureLogLine(line: string, source?: string): void {
  const dir = captureDir();
  if (!dir) return;
  ensureDir(dir);
  appendFileSync(path.join(dir, `${safe(source ?? currentTestFile())}.logs-${process.pid}.jsonl`), `${line}\n`);
}

/**
 * Copies a child's stdout and stderr, each to its own file (two streams in one file could split a line). A CLI
 * command's stdout is its answer to the operator, not a log (`keys create` shows the new key there once, by design):
 * with `answerOnStdout`, only its stderr (progress, warnings, errors) is copied.
 */
export function captureChildOutput(child: ChildProcess, label: string, { answerOnStdout = false } = {}): void {
  for (const [stream, name] of [
    [answerOnStdout ? null : child.stdout, 'stdout'],
    [child.stderr, 'stderr'],
  ] as const) {
    if (!stream) continue;
    const file = captureFile(`${label}.${name}`, 'log');
    if (!file) return;
    const out = createWriteStream(file, { flags: 'a' });
    stream.on('data', (chunk: Buffer) => out.write(chunk));
    stream.once('close', () => out.end());
  }
}

/** Records a private key a test created (an owner's SVD master key, 64 hex) for the scan. */
export function registerPrivateKey(name: string, privHex: string): void {
  registerSecrets({ [name]: privHex }, true);
}

/**
 * Records the secret values of an environment the tests built (a variable whose name marks it secret by the
 * logger's own rules: API_KEY, JWT_SECRET, SMTP_PASS, KMS_API_KEY, …), so the scan can look for them literally.
 */
export function registerSecrets(env: Record<string, string | undefined>, all = false): void {
  const dir = captureDir();
  if (!dir) return;
  const lines = Object.entries(env)
    .filter(([name, value]) => value && (all || isSecretField(name)))
    .map(([name, value]) => JSON.stringify({ name, value }));
  if (lines.length === 0) return;
  ensureDir(dir);
  appendFileSync(path.join(dir, `secrets-${process.pid}.jsonl`), `${lines.join('\n')}\n`);
}

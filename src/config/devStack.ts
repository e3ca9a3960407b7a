import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';

/**
 * Settings of the development and test stack (`npm run dev`, `npm test`): where tools are cached, where dev
 * data lives and which ports the local services use. Read only by ops/dev-stack and the test setup, never by the
 * product's processes.
 */
export interface DevStackConfig {
  repoRoot: string;
  /** Built and downloaded tools (Temporal CLI, FerretDB, the Java test server). Outside the repo, so clones share it. */
  toolsDir: string;
  /** Dev data: the Temporal SQLite file, FerretDB's SQLite files, Redis dump, logs and pid files. Git-ignored. */
  dataDir: string;
  temporalUiPort: number;
  /** HTTP port of the SMTP capture's message API (its SMTP port is SMTP_PORT). */
  smtpCaptureHttpPort: number;
  /** The webhook receiver stand-in's HTTP port. */
  webhookReceiverPort: number;
  /** Set when the process runs as root and may install Debian packages with apt-get. */
  canUseApt: boolean;
  /**
   * Storage engine under the FerretDB stand-in. PostgreSQL (the default) pushes indexed equality filters down and
   * keeps lookups in milliseconds at 100,000 documents; SQLite scans every collection in Go (docs/ARCHITECTURE.md).
   */
  ferretdbBackend: FerretdbBackend;
  /** `CI=true`: a tool the tests need that cannot be provisioned fails the run instead of skipping its tests. */
  ci: boolean;
}

export type FerretdbBackend = 'postgresql' | 'sqlite';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

export function loadDevStackConfig(env: Record<string, string | undefined> = process.env): DevStackConfig {
  const cacheHome = env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache');
  return {
    repoRoot: REPO_ROOT,
    toolsDir: path.resolve(env.PATCHPROOF_TOOLS_DIR ?? path.join(cacheHome, 'patchproof', 'tools')),
    dataDir: path.resolve(env.PATCHPROOF_DATA_DIR ?? path.join(REPO_ROOT, '.data')),
    temporalUiPort: Number(env.TEMPORAL_UI_PORT ?? 8233),
    smtpCaptureHttpPort: Number(env.SMTP_CAPTURE_HTTP_PORT ?? 8025),
    webhookReceiverPort: Number(env.WEBHOOK_RECEIVER_PORT ?? 8093),
    canUseApt: typeof process.getuid === 'function' && process.getuid() === 0 && env.PATCHPROOF_NO_APT !== '1',
    ferretdbBackend: parseFerretdbBackend(env.PATCHPROOF_FERRETDB_BACKEND),
    ci: env.CI === 'true' || env.CI === '1',
  };
}

function parseFerretdbBackend(value: string | undefined): FerretdbBackend {
  if (value === undefined || value === '' || value === 'postgresql') return 'postgresql';
  if (value === 'sqlite') return 'sqlite';
  throw new Error(`PATCHPROOF_FERRETDB_BACKEND must be postgresql or sqlite, not ${JSON.stringify(value)}`);
}

/** Variables that only the dev stack reads; documented in docs/CONFIGURATION.md with the rest. */
export const DEV_STACK_VARIABLE_NAMES = [
  'PATCHPROOF_TOOLS_DIR',
  'PATCHPROOF_DATA_DIR',
  'PATCHPROOF_NO_APT',
  'PATCHPROOF_FERRETDB_BACKEND',
  'CI',
  'TEMPORAL_UI_PORT',
  'XDG_CACHE_HOME',
  'SMTP_CAPTURE_HTTP_PORT',
  'WEBHOOK_RECEIVER_PORT',
] as const;

/** Reads `.env` at the repo root, if present, without touching process.env. Values already in `env` win. */
export function withDotEnv(env: Record<string, string | undefined> = process.env): Record<string, string | undefined> {
  const file = path.join(REPO_ROOT, '.env');
  if (!existsSync(file)) return { ...env };
  const fromFile = parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
  return { ...fromFile, ...env };
}

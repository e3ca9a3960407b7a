import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Runs schemathesis over the OpenAPI document the API serves and counts what it found from its NDJSON event
 * report, so the fuzz script and the bounded test judge one set of numbers.
 */

export interface FuzzFailure {
  operation: string;
  check: string;
  code: string;
  title: string;
  message: string;
}

export interface FuzzCounts {
  /** Test cases sent (every phase, stateful steps included). */
  cases: number;
  /** Cases of the stateful phase (operations chained through links). */
  statefulCases: number;
  serverErrors: number;
  schemaViolations: number;
  undocumentedStatus: number;
  /** Faults of the Python runtime under schemathesis (not of the API), counted apart. */
  toolFaults: number;
  /** Operations with a request that got no answer within the request timeout. */
  timeouts: string[];
  /** Every failed check, deduplicated by operation, check and message. */
  failures: FuzzFailure[];
}

export interface FuzzOptions {
  schemathesis: string;
  baseUrl: string;
  apiKey: string;
  ownerToken: string;
  /** The server's chain network, so generated addresses are ones it accepts. */
  network: 'main' | 'test';
  /** Cases per operation and phase. */
  maxExamples: number;
  workDir: string;
  seed?: number;
  /** Seconds a request may take before it counts as unanswered (default 60). */
  requestTimeout?: number;
  /** Seconds for the whole run; fuzzing and stateful phases repeat until it is spent. */
  maxTime?: number;
  say?: (line: string) => void;
}

/**
 * Where the document cannot say what the server enforces, and why. Each entry widens one check for one operation;
 * nothing else is excluded. A 400 here is always in the error envelope with a documented code (docs/API.md).
 */
export const SPEC_LIMITS: { method: string; path: string; check: string; expectedStatuses?: number[]; why: string }[] = [
  {
    method: 'POST',
    path: '/api/svd/complete',
    check: 'positive_data_acceptance',
    expectedStatuses: [400],
    why: 'M must be a challenge the server issued and that is still live (SVD_EXPIRED, SVD_BAD_CHALLENGE)',
  },
  {
    method: 'POST',
    path: '/api/svd/register',
    check: 'positive_data_acceptance',
    expectedStatuses: [400],
    why: 'userId is required when the proof is the x-api-key header rather than a bearer token',
  },
  ...['/v1/owner/addresses', '/v1/patches/{uid}/transfers', '/v1/pos/claim-intents'].map((path) => ({
    method: 'POST',
    path,
    check: 'positive_data_acceptance',
    expectedStatuses: [400],
    why: 'expiresAt of the signed message must still lie ahead (SIGNATURE_EXPIRED); a schema cannot say "after now"',
  })),
  {
    method: 'POST',
    path: '/v1/patches/{uid}/unlock',
    check: 'positive_data_acceptance',
    expectedStatuses: [400],
    why: 'the challenge must be one the server issued in the last 120 s (SIGNATURE_EXPIRED)',
  },
  {
    method: 'POST',
    path: '/v1/admin/issuer-keys/{kid}/revoke',
    check: 'positive_data_acceptance',
    expectedStatuses: [400],
    why: 'revokedAt must have passed; a schema cannot say "before now"',
  },
  {
    method: 'POST',
    path: '/v1/admin/rotations/kms',
    check: 'unsupported_method',
    why: 'GET on this path is GET /v1/admin/rotations/{purpose}, which answers 400 for the purpose "kms"; other methods get 405',
  },
];

/** Statuses the positive-data check accepts by default (schemathesis's list); SPEC_LIMITS adds to it per operation. */
const POSITIVE_STATUSES = ['2xx', '3xx', 401, 403, 404, 409, 429];
/** Statuses a rejection may have: schemathesis's list and 413, which the batch route answers past BATCH_MAX_ITEMS items. */
const NEGATIVE_STATUSES = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429];

const toml = (value: unknown) => JSON.stringify(value);

/** The run's configuration: credentials by security scheme, read from the environment so no file holds them. */
export function schemathesisConfig(): string {
  const lines = [
    // Strings the server accepts by a rule the pattern cannot carry (a Base58Check checksum) come from hooks.
    `hooks = ${toml(path.join(__dirname, 'schemathesis_hooks.py'))}`,
    '',
    '[auth.openapi.ApiKeyAuth]',
    'api_key = "${PATCHPROOF_FUZZ_API_KEY}"',
    '',
    '[auth.openapi.OwnerSession]',
    'bearer = "${PATCHPROOF_FUZZ_OWNER_TOKEN}"',
    '',
    // Conformance, not speed: on a shared 2-core machine under other suites an answer can take 30 s; the bench
    // scripts measure latency. The limit matches the request timeout.
    '[checks]',
    'max_response_time = 600',
    '',
    '[checks.negative_data_rejection]',
    `expected-statuses = ${toml(NEGATIVE_STATUSES.map(String))}`,
    '',
  ];
  for (const limit of SPEC_LIMITS) {
    lines.push(
      `# ${limit.why}`,
      '[[operations]]',
      `include-method = ${toml(limit.method)}`,
      `include-path = ${toml(limit.path)}`,
      ...(limit.expectedStatuses
        ? [
            `[operations.checks.${limit.check}]`,
            `expected-statuses = ${toml([...POSITIVE_STATUSES, ...limit.expectedStatuses].map(String))}`,
          ]
        : // Only the unsupported-method probe is turned off this way: every other method is still sent.
          ['[operations.phases.coverage]', `unexpected-methods = ${toml(['PUT', 'DELETE', 'PATCH', 'TRACE'])}`]),
      '',
    );
  }
  return lines.join('\n');
}

export async function runSchemathesis(options: FuzzOptions): Promise<FuzzCounts> {
  mkdirSync(options.workDir, { recursive: true });
  const configFile = path.join(options.workDir, 'schemathesis.toml');
  writeFileSync(configFile, schemathesisConfig());
  const reportDir = path.join(options.workDir, 'report');
  const args = [
    ...['--config-file', configFile, '--no-color', 'run'],
    ...['--checks', 'all', '--max-examples', String(options.maxExamples), '--workers', '2'],
    ...['--report', 'ndjson', '--report-dir', reportDir, '--generation-database', 'none'],
    // Generous: a shared 2-core machine under other suites answers slowly, and a timeout is not a finding.
    ...['--request-timeout', String(options.requestTimeout ?? 60)],
    ...(options.seed !== undefined ? ['--seed', String(options.seed)] : []),
    ...(options.maxTime !== undefined ? ['--max-time', String(options.maxTime)] : []),
    `${options.baseUrl}/openapi.json`,
  ];
  // Its cache (.schemathesis/) goes to the working directory: the run's own, never the repository.
  const output = await run(options.schemathesis, args, options.workDir, {
    PATCHPROOF_FUZZ_API_KEY: options.apiKey,
    PATCHPROOF_FUZZ_OWNER_TOKEN: options.ownerToken,
    PATCHPROOF_FUZZ_NETWORK: options.network,
  });
  writeFileSync(path.join(options.workDir, 'schemathesis.out'), output.text);
  const report = existsSync(reportDir) ? readdirSync(reportDir).find((name) => name.endsWith('.ndjson')) : undefined;
  if (!report) throw new Error(`schemathesis wrote no report (exit ${output.code}):\n${output.text.slice(-4000)}`);
  return countEvents(readFileSync(path.join(reportDir, report), 'utf8'));
}

interface ScenarioFinished {
  phase?: { name?: string } | string;
  recorder: {
    label: string;
    cases?: Record<string, unknown>;
    checks?: Record<string, { name: string; status: string; failure_info?: { failure?: Partial<FuzzFailure> & { type?: string } } }[]>;
    interactions?: Record<string, { response?: { status_code?: number } | null }>;
  };
}

/** Counts cases, 5xx answers and failed checks in a schemathesis NDJSON event stream. */
export function countEvents(ndjson: string): FuzzCounts {
  const counts: FuzzCounts = {
    cases: 0,
    statefulCases: 0,
    serverErrors: 0,
    schemaViolations: 0,
    undocumentedStatus: 0,
    toolFaults: 0,
    timeouts: [],
    failures: [],
  };
  const seen = new Set<string>();
  for (const line of ndjson.split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as {
      ScenarioFinished?: ScenarioFinished;
      NonFatalError?: { label?: string; value?: { type?: string; message?: string } };
    };
    if (event.NonFatalError) {
      // A case schemathesis could not even send (no serializer, an unusable schema) tested nothing: a failure too,
      // except CPython 3.11.7's own parser fault inside Hypothesis, which says nothing about the API.
      const { label = '', value = {} } = event.NonFatalError;
      if (value.type === 'SystemError' && value.message?.includes('AST constructor recursion depth mismatch')) {
        counts.toolFaults += 1;
        continue;
      }
      // No answer within the request timeout: slow, not wrong; listed apart so it is seen but does not fail a run.
      if (value.type === 'ReadTimeout') {
        counts.timeouts.push(label);
        continue;
      }
      counts.failures.push({
        operation: label,
        check: 'error',
        code: value.type ?? '',
        title: 'schemathesis error',
        message: value.message ?? '',
      });
    }
    const scenario = event.ScenarioFinished;
    if (!scenario) continue;
    const { recorder } = scenario;
    const phase = typeof scenario.phase === 'string' ? scenario.phase : scenario.phase?.name;
    const cases = Object.keys(recorder.cases ?? {}).length;
    counts.cases += cases;
    if (phase === 'stateful') counts.statefulCases += cases;
    for (const interaction of Object.values(recorder.interactions ?? {})) {
      if ((interaction.response?.status_code ?? 0) >= 500) counts.serverErrors += 1;
    }
    for (const checks of Object.values(recorder.checks ?? {})) {
      for (const check of checks) {
        if (check.status === 'success' || check.status === 'skip') continue;
        if (check.name === 'response_schema_conformance') counts.schemaViolations += 1;
        if (check.name === 'status_code_conformance') counts.undocumentedStatus += 1;
        const failure = check.failure_info?.failure ?? {};
        const entry: FuzzFailure = {
          operation: failure.operation ?? recorder.label,
          check: check.name,
          code: failure.code ?? '',
          title: failure.title ?? check.status,
          message: failure.message ?? '',
        };
        const key = `${entry.operation}|${entry.check}|${entry.message}`;
        if (!seen.has(key)) {
          seen.add(key);
          counts.failures.push(entry);
        }
      }
    }
  }
  return counts;
}

export function describeCounts(counts: FuzzCounts): string {
  const lines = [
    `cases: ${counts.cases} (stateful: ${counts.statefulCases})`,
    `5xx: ${counts.serverErrors}`,
    `schema violations: ${counts.schemaViolations}`,
    `undocumented status codes: ${counts.undocumentedStatus}`,
    `distinct failed checks and errors: ${counts.failures.length}`,
    ...(counts.timeouts.length > 0
      ? [`requests unanswered within the request timeout (slow, not failed): ${counts.timeouts.join(', ')}`]
      : []),
    ...(counts.toolFaults > 0 ? [`faults of the Python runtime, not of the API: ${counts.toolFaults}`] : []),
    ...counts.failures.map((f) => `  - ${f.operation}: ${f.code} ${f.title} (${f.check}) ${f.message.split('\n').join(' / ')}`),
  ];
  return lines.join('\n');
}

function run(bin: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; text: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LANG: 'C.UTF-8', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, text }));
  });
}

import { readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TEST_ENV } from './testEnv';

/** The scrape jobs of the test Prometheus; the same names as ops/prometheus/prometheus.yml. */
export const PROMETHEUS_JOBS = ['patchproof-api', 'patchproof-worker', 'patchproof-worker-temporal'] as const;
export type PrometheusJob = (typeof PROMETHEUS_JOBS)[number];

/** The test Prometheus, or why there is none (the Debian package could not be installed). */
export function testPrometheus(): { url: string; targetsDir: string } | { problem: string } {
  const url = process.env[TEST_ENV.prometheusUrl];
  const targetsDir = process.env[TEST_ENV.prometheusTargets];
  if (url && targetsDir) return { url, targetsDir };
  return { problem: process.env[TEST_ENV.prometheusProblem] ?? 'the integration globalSetup did not start Prometheus' };
}

/** Adds `host:port` to a job's targets; file discovery picks it up within a second. */
export function registerScrapeTarget(targetsDir: string, job: PrometheusJob, id: string, target: string, apiKey?: string): void {
  if (apiKey) writeFileSync(path.join(targetsDir, `${job}.key`), apiKey, { mode: 0o600 });
  // Written aside and renamed: discovery must never read a half-written file.
  const file = path.join(targetsDir, `${job}-${id}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify([{ targets: [target], labels: { test_id: id } }]));
  renameSync(`${file}.tmp`, file);
}

/** Removes every target a test registered under `id` (and `id-…`). */
export function unregisterScrapeTargets(targetsDir: string, id: string): void {
  for (const file of readdirSync(targetsDir)) {
    if (file.endsWith('.json') && file.includes(`-${id}`)) rmSync(path.join(targetsDir, file), { force: true });
  }
}

export interface PromVectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromQueryResult {
  status: 'success' | 'error';
  data?: { resultType: 'vector' | 'scalar' | 'matrix' | 'string'; result: PromVectorSample[] | [number, string] };
  errorType?: string;
  error?: string;
}

/** An instant query through the HTTP API. */
export async function promQuery(url: string, expr: string): Promise<PromQueryResult> {
  const res = await fetch(`${url}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query: expr }).toString(),
  });
  return (await res.json()) as PromQueryResult;
}

/** Number of samples a query returned (a scalar counts as one). */
export function sampleCount(result: PromQueryResult): number {
  if (result.status !== 'success' || !result.data) return 0;
  if (result.data.resultType === 'scalar') return 1;
  return (result.data.result as PromVectorSample[]).length;
}

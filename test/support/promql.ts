import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { createMetrics } from '../../src/metrics';
import { PROMETHEUS_SERIES, TEMPORAL_SDK_METRICS } from '../../src/metrics/temporalSdk';
import { REPO_ROOT } from './processes';

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/** Metric names a PromQL expression selects: identifiers outside label matchers, strings and grouping clauses. */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ')
    .replace(/\b\d+(ms|s|m|h|d|w|y)\b/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\(?))/g)) {
    const [word] = match;
    if (match[1] === '(') continue; // a function call
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    if (/^\d/.test(word)) continue;
    names.add(word);
  }
  return [...names];
}

/** Every series name the product's registries emit (histograms as _bucket, _sum and _count). */
export async function emittedMetricNames(): Promise<Set<string>> {
  const metrics = createMetrics({ service: 'names', deploySha: 'names' });
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    const type = String(metric.type);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
    else names.add(metric.name);
  }
  return names;
}

/** Temporal SDK names as queried: histograms as _bucket, _sum and _count. */
export function temporalSeriesNames(): Set<string> {
  const names = new Set<string>();
  for (const name of TEMPORAL_SDK_METRICS) {
    names.add(name);
    if (name.endsWith('_latency')) for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

export async function knownSeriesNames(): Promise<Set<string>> {
  return new Set([...(await emittedMetricNames()), ...temporalSeriesNames(), ...PROMETHEUS_SERIES]);
}

export const GRAFANA_DIR = path.join(REPO_ROOT, 'grafana');
export const PROMETHEUS_DIR = path.join(REPO_ROOT, 'ops', 'prometheus');

export interface DashboardQuery {
  dashboard: string;
  panel: string;
  expr: string;
}

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query: { query: string } | string }[] };
}

export function dashboardFiles(): string[] {
  return readdirSync(GRAFANA_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export function readDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(path.join(GRAFANA_DIR, file), 'utf8')) as Dashboard;
}

/** Every panel query of every dashboard. */
export function dashboardQueries(): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  for (const file of dashboardFiles()) {
    const walk = (panels: Panel[]) => {
      for (const panel of panels) {
        for (const target of panel.targets ?? []) queries.push({ dashboard: file, panel: panel.title, expr: target.expr });
        walk(panel.panels ?? []);
      }
    };
    walk(readDashboard(file).panels);
  }
  return queries;
}

/** A dashboard query with its template variables set to "All", as Grafana sends it with the default selection. */
export function withAllVariables(expr: string): string {
  return expr.replace(/\$(kid|deploy_sha)\b/g, '.*');
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
}

export function alertRules(): AlertRule[] {
  const doc = parse(readFileSync(path.join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

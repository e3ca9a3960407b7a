import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { which } from '../../../ops/dev-stack/provision';
import { alertRules, PROMETHEUS_DIR } from '../../support/promql';
import { itWithTool, requireTool, toolsRequired } from '../../support/requiredTools';

/**
 * The alert rules' own unit tests (ops/prometheus/alerts.test.yml) run through promtool from Debian's `prometheus`
 * package, which `npm test` provisions (ops/dev-stack/provision.ts). Without promtool those tests are skipped, and
 * their names say why; under CI they fail instead.
 */
const promtool = which('promtool');
const SKIPPED =
  'skipped: promtool is not on PATH (install the Debian package `prometheus`, or run `npm run provision -- --for test` as root)';
const withPromtool = itWithTool(promtool);
const named = (title: string) => (promtool || toolsRequired ? title : `${title} — ${SKIPPED}`);

function runPromtool(args: string[]) {
  const result = spawnSync(requireTool(promtool, 'promtool'), args, { cwd: PROMETHEUS_DIR, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Runbook alert → the rule(s) that implement it. */
const RUNBOOK_ALERTS: Record<string, string[]> = {
  'Elevated 5xx rate': ['PatchProofHigh5xxRate'],
  'Spike in SVD replay/expired errors': ['PatchProofSvdReplayOrExpiredSpike'],
  'UTXO pool below threshold for prolonged period': ['PatchProofUtxoPoolLow'],
  'Broadcast failures containing "Missing inputs"': ['PatchProofBroadcastMissingInputs'],
  'Mongo connection errors/disconnects': ['PatchProofMongoConnectionErrors', 'PatchProofMongoDisconnected'],
  'Success Rate below 99% for 5m': ['PatchProofSvdSuccessRateLow'],
  'Error Rate above 5% for 5m': ['PatchProofSvdErrorRateHigh'],
  'Challenge Age p99 > 80% of expiry for 5m': ['PatchProofSvdChallengeAgeNearExpiry'],
  'Redis unavailable at startup': ['PatchProofProcessDown', 'PatchProofRedisDisconnected'],
  'Workflow failures': ['PatchProofWorkflowFailures'],
  'Schedule misses': ['PatchProofScheduleMissedActions', 'PatchProofScheduleOverdue'],
  'A dependency stalls': ['PatchProofCircuitOpen'],
};

interface RuleTestFile {
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

describe('Prometheus alert rules', () => {
  const rules = alertRules();

  it('covers every alert of the runbook, plus workflow failures and schedule misses', () => {
    const names = new Set(rules.map((r) => r.alert));
    for (const [alert, implementedBy] of Object.entries(RUNBOOK_ALERTS)) {
      for (const rule of implementedBy) expect({ alert, rule, defined: names.has(rule) }).toEqual({ alert, rule, defined: true });
    }
  });

  it('has, for every rule, a promtool case where it fires and one where it stays quiet', () => {
    const file = parse(readFileSync(path.join(PROMETHEUS_DIR, 'alerts.test.yml'), 'utf8')) as RuleTestFile;
    const cases = file.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of rules) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      expect({ rule: rule.alert, fires: mine.some((c) => (c.exp_alerts ?? []).length > 0) }).toEqual({ rule: rule.alert, fires: true });
      expect({ rule: rule.alert, quiet: mine.some((c) => (c.exp_alerts ?? []).length === 0) }).toEqual({ rule: rule.alert, quiet: true });
    }
  });

  withPromtool(named('pass `promtool check rules`'), () => {
    const { status, output } = runPromtool(['check', 'rules', 'alerts.yml']);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status).toBe(0);
  });

  withPromtool(named('pass their unit tests (`promtool test rules alerts.test.yml`)'), () => {
    const { status, output } = runPromtool(['test', 'rules', 'alerts.test.yml']);
    expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') as unknown });
  });

  withPromtool(named('the scrape configuration passes `promtool check config`'), () => {
    // --syntax-only: the API key file it names exists only on a server.
    const { status, output } = runPromtool(['check', 'config', '--syntax-only', 'prometheus.yml']);
    expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') as unknown });
  });
});

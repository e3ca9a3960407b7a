import { alertRules, dashboardFiles, dashboardQueries, knownSeriesNames, metricNamesIn, readDashboard } from '../../support/promql';

describe('Grafana dashboards', () => {
  it('includes the SVD, workflows and anchoring-and-pool dashboards', () => {
    expect(dashboardFiles()).toEqual(['anchoring-pool-dashboard.json', 'svd-dashboard.json', 'workflows-dashboard.json']);
  });

  it.each(dashboardFiles())('%s: every panel and variable uses the datasource uid Prometheus', (file) => {
    const dashboard = readDashboard(file);
    expect(dashboard.uid).toMatch(/^patchproof-/);
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThan(0);
    for (const panel of panels as unknown as { datasource: { uid: string }; targets: { datasource: { uid: string }; expr: string }[] }[]) {
      expect(panel.datasource.uid).toBe('Prometheus');
      expect(panel.targets.length).toBeGreaterThan(0);
      for (const target of panel.targets) {
        expect(target.datasource.uid).toBe('Prometheus');
        expect(target.expr.trim()).not.toBe('');
      }
    }
  });

  it('puts the runbook KPIs on top of the SVD dashboard, and its drill-downs below', () => {
    const panels = readDashboard('svd-dashboard.json').panels.filter((p) => p.type !== 'row');
    expect(panels.slice(0, 3).map((p) => p.title)).toEqual(['Success Rate (%)', 'Error Rate (%)', 'Logins/min']);
    expect(panels.map((p) => p.title)).toEqual(expect.arrayContaining(['Failure Breakdown', 'Challenge Age p50/p90/p99']));
  });

  it('queries only metric names the code emits (product registries, Temporal SDK, Prometheus up)', async () => {
    const known = await knownSeriesNames();
    const unknown = dashboardQueries().flatMap((q) =>
      metricNamesIn(q.expr)
        .filter((name) => !known.has(name))
        .map((name) => `${q.dashboard} / ${q.panel}: ${name}`),
    );
    expect(unknown).toEqual([]);
    // The check reads real names, not an empty parse.
    expect(dashboardQueries().flatMap((q) => metricNamesIn(q.expr)).length).toBeGreaterThan(40);
  });

  it('template variables query emitted names too', async () => {
    const known = await knownSeriesNames();
    for (const file of dashboardFiles()) {
      for (const variable of readDashboard(file).templating.list) {
        const query = typeof variable.query === 'string' ? variable.query : variable.query.query;
        const name = /label_values\((\w+)/.exec(query)?.[1];
        expect(name && known.has(name)).toBe(true);
      }
    }
  });
});

describe('PromQL metric-name extraction', () => {
  it('finds selected names and skips functions, labels, grouping clauses and variables', () => {
    expect(
      metricNamesIn(
        '100 * sum by (le, kid) (rate(patchproof_svd_events_total{event_type="complete",kid=~"$kid"}[5m])) / on() group_left() max(up) or vector(0)',
      ).sort(),
    ).toEqual(['patchproof_svd_events_total', 'up']);
  });

  it('alert expressions query only emitted names', async () => {
    const known = await knownSeriesNames();
    const unknown = alertRules().flatMap((rule) =>
      metricNamesIn(rule.expr)
        .filter((name) => !known.has(name))
        .map((n) => `${rule.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });
});

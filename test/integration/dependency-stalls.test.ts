import {
  PROBE_NAMES,
  STALL_CONTRACT,
  STALLED_SERVICES,
  probe,
  registrationOutcome,
  runStall,
  stallTable,
  type StallRun,
  type StallStack,
  startStallStack,
} from '../support/stallStack';

/**
 * A dependency that stops answering (SIGSTOP) rather than refusing connections. The services frozen here are this
 * file's own (test/support/stallStack.ts), so parallel files never see them stop. Budgets get 50 % room for a busy
 * shared machine; a route that waited on the frozen service without a deadline would take the whole 10 s.
 */
const STALL_MS = 10_000;
const SLACK = 1.5;
const RECOVERY_MS = 5_000;
/** RSS is allowed this much above its level before the stall: what the load itself allocates, not a pile-up. */
const RSS_ROOM_MIB = 40;

describe('when a dependency stalls (SIGSTOP for 10 s under a small load)', () => {
  let stack: StallStack;
  const runs: StallRun[] = [];

  beforeAll(async () => {
    stack = await startStallStack();
    // Warm every route (module loading, connection pools) so the baseline RSS is the API at work, not at rest.
    for (let i = 0; i < 5; i++) {
      for (const name of PROBE_NAMES) await probe(stack, name, name === 'register' ? `WARM-${i}` : undefined);
    }
  }, 180_000);
  afterAll(async () => {
    if (runs.length > 0) process.stderr.write(`${stallTable(runs)}\n`);
    await stack?.close();
  }, 60_000);

  it.each(STALLED_SERVICES)(
    'answers every probed route within its budget with the documented status while %s is frozen, then recovers',
    async (service) => {
      const run = await runStall(stack, service, { stallMs: STALL_MS, concurrency: 2 });
      runs.push(run);

      for (const name of PROBE_NAMES) {
        const { budgetMs, during } = STALL_CONTRACT[name];
        const answers = run.answers.filter((a) => a.probe === name);
        expect(answers.length).toBeGreaterThan(2);
        expect({ name, noAnswer: answers.filter((a) => a.status === 0).map((a) => a.error) }).toEqual({ name, noAnswer: [] });
        // Every answer has the documented status (a request with no answer shows as status 0 and fails here).
        expect({ name, statuses: [...new Set(answers.map((a) => a.status))] }).toEqual({ name, statuses: [during[service]] });
        const slowestMs = Math.round(Math.max(...answers.map((a) => a.ms)));
        expect({ name, slowestMs, withinBudget: slowestMs < budgetMs * SLACK }).toMatchObject({ name, withinBudget: true });
        // A 503 tells the client when to come back.
        for (const answer of answers.filter((a) => a.status === 503)) expect(answer.retryAfter).toMatch(/^[1-9]\d*$/);
        expect(run.recoveryMs[name]).toBeLessThan(RECOVERY_MS);
      }

      const outcome = await registrationOutcome(stack, run.registrations);
      expect(outcome).toEqual({ lost: [], duplicated: [] });
      expect(run.rssAfterMiB).toBeLessThan(run.rssBeforeMiB + RSS_ROOM_MIB);
    },
    120_000,
  );

  it('shows the open circuits in the API metrics while they last, and closes them once the dependency answers', async () => {
    const metrics = await (await fetch(`${stack.apiUrl}/metrics`, { headers: { 'x-api-key': stack.pool.deps.config.auth.apiKey } })).text();
    // Each stall above opened its dependency's circuit at least once; every circuit is closed again now.
    for (const dependency of STALLED_SERVICES) {
      const opens = Number(
        metrics.match(new RegExp(`patchproof_circuit_opens_total\\{[^}]*dependency="${dependency}"[^}]*\\} (\\d+)`))?.[1],
      );
      expect({ dependency, opened: opens > 0 }).toEqual({ dependency, opened: true });
      expect(metrics).toMatch(new RegExp(`patchproof_circuit_open\\{[^}]*dependency="${dependency}"[^}]*\\} 0`));
    }
  });
});

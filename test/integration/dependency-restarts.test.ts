import { RESTARTED_SERVICES, restartTable, runRestart, startRestartStack, type RestartRun, type RestartStack } from '../support/restarts';

/**
 * A dependency that goes away and comes back (stopped, then started on the same port with the same data) while
 * registrations are in flight, on a stack of this file's own (test/support/stallStack.ts) with the API and the main
 * worker as their own processes. `npm run restarts` runs the same with 100 registrations per restart.
 */
const REGISTRATIONS = 12;
const DOWNTIME_MS = 4_000;
/** From the service answering again until /ready, an SVD login and a registration all succeed (measured: 1–3 s). */
const RECOVERY_MS = 20_000;

/** What each route answers while the service is down (docs/OPERATIONS.md, "When a dependency restarts"). */
const WHILE_DOWN = {
  temporal: { register: 503, svdLogin: 200 },
  mongo: { register: 503, svdLogin: 503 },
  redis: { register: 202, svdLogin: 503 },
};

describe('when a dependency restarts under registrations in flight', () => {
  let setup: RestartStack;
  const runs: RestartRun[] = [];

  beforeAll(async () => {
    setup = await startRestartStack();
  }, 240_000);
  afterAll(async () => {
    if (runs.length > 0) process.stderr.write(`${restartTable(runs)}\n`);
    await setup?.stack.close();
  }, 90_000);

  it.each(RESTARTED_SERVICES)(
    'loses and duplicates no registration when %s restarts; /ready reports it, and everything recovers without a process restart',
    async (service) => {
      const run = await runRestart(setup, service, { registrations: REGISTRATIONS, downtimeMs: DOWNTIME_MS, anchorTimeoutMs: 120_000 });
      runs.push(run);
      const context = () => `\n--- worker\n${setup.stack.worker?.output() ?? ''}\n--- API\n${setup.stack.apiOutput()}`;

      // The restart caught registrations in flight, and more came while the service was down.
      expect(run.inFlightAtStop).toBeGreaterThan(0);
      expect(run.registerDuring.length).toBeGreaterThan(0);
      expect({ accepted: run.accepted, anchored: run.anchored }).toEqual({ accepted: REGISTRATIONS, anchored: REGISTRATIONS });
      expect({ lost: run.lost, duplicated: run.duplicated }).toEqual({ lost: [], duplicated: [] });
      expect(run.chain.committed).toBe(run.chain.anchored);
      expect(run.reservedUtxos).toBe(0);
      expect(run.noAnswer).toEqual([]);

      // While down: /ready names the service; routes answer as documented, a 503 with Retry-After.
      expect(run.readyDuring.length).toBeGreaterThan(0);
      expect([...new Set(run.readyDuring.map((r) => `${r.status} ${r.check}`))]).toEqual(['503 down']);
      expect([...new Set(run.registerDuring)]).toEqual([WHILE_DOWN[service].register]);
      expect([...new Set(run.svdLoginDuring)]).toEqual([WHILE_DOWN[service].svdLogin]);
      if (WHILE_DOWN[service].svdLogin === 503) expect(run.svdRetryAfter).toMatch(/^[1-9]\d*$/);

      // Back by itself: the same API and worker processes, the worker polling again.
      expect(run.recoveryMs).toBeLessThan(RECOVERY_MS);
      const recovered = { processes: run.processes, workerPolling: run.workerPolling };
      const expected = { processes: { api: true, worker: true }, workerPolling: true };
      if (JSON.stringify(recovered) !== JSON.stringify(expected)) process.stderr.write(`after ${service} restarted:${context()}\n`);
      expect(recovered).toEqual(expected);
    },
    240_000,
  );
});

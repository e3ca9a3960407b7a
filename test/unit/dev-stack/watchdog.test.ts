import { createDatabaseWatchdog, type DatabaseStatus } from '../../../ops/dev-stack/watchdog';

function scripted(statuses: DatabaseStatus[]) {
  let clock = 0;
  const lines: string[] = [];
  let restarts = 0;
  const watchdog = createDatabaseWatchdog({
    probe: () => Promise.resolve(statuses.shift() ?? 'up'),
    restart: () => {
      restarts += 1;
      return Promise.resolve();
    },
    say: (line) => lines.push(line),
    unresponsiveMs: 10_000,
    settleMs: 15_000,
    now: () => clock,
  });
  return {
    watchdog,
    lines,
    restarts: () => restarts,
    /** One probe every two seconds, as the supervisor runs it. */
    async tick(times: number) {
      for (let i = 0; i < times; i++) {
        await watchdog.check();
        clock += 2_000;
      }
    },
  };
}

describe('database watchdog of the dev supervisor', () => {
  it('restarts the database once it has been down for ten seconds in a row, and says so', async () => {
    const run = scripted(Array<DatabaseStatus>(6).fill('down'));
    await run.tick(5);
    expect(run.restarts()).toBe(0);
    await run.tick(1);
    expect(run.restarts()).toBe(1);
    expect(run.lines).toEqual([
      'mongodb     unresponsive for 10 s according to /ready: restarting the database process (data kept)',
      'mongodb     restarted',
    ]);
  });

  it('starts counting again when the database answers in between', async () => {
    const run = scripted(['down', 'down', 'down', 'up', 'down', 'down', 'down', 'down', 'down']);
    await run.tick(9);
    expect(run.restarts()).toBe(0);
  });

  it('takes an API that does not answer as no evidence, and gives a restarted database time to come up', async () => {
    const run = scripted(['down', 'unknown', 'unknown', 'down', 'down', 'down', ...Array<DatabaseStatus>(12).fill('down')]);
    await run.tick(6);
    expect(run.restarts()).toBe(1);
    // Probes during the next 15 s are skipped; the still-down database is restarted again only after 10 s more.
    await run.tick(7);
    expect(run.restarts()).toBe(1);
    await run.tick(6);
    expect(run.restarts()).toBe(2);
  });

  it('reports a failed restart and keeps watching', async () => {
    const lines: string[] = [];
    let clock = 0;
    const watchdog = createDatabaseWatchdog({
      probe: () => Promise.resolve('down'),
      restart: () => Promise.reject(new Error('port 27017 is already in use')),
      say: (line) => lines.push(line),
      now: () => clock,
    });
    for (let i = 0; i < 6; i++, clock += 2_000) await watchdog.check();
    expect(lines[1]).toBe('mongodb     restart failed: port 27017 is already in use');
    expect(watchdog.restarts).toBe(1);
  });
});

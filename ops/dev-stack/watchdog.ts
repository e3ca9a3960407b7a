/**
 * The dev supervisor's database watchdog. A wedged embedded database does not exit: it stops answering, and the
 * whole stack hangs behind it. The watchdog reads the API's /ready; when the database has been reported down for
 * `unresponsiveMs` in a row it says so and restarts the database process, whose data stays where it is.
 */

export type DatabaseStatus = 'up' | 'down' | 'unknown';

export interface DatabaseWatchdogOptions {
  /** The database's status as /ready reports it; `unknown` while the API itself does not answer. */
  probe: () => Promise<DatabaseStatus>;
  restart: () => Promise<void>;
  say: (line: string) => void;
  unresponsiveMs?: number;
  intervalMs?: number;
  /** After a restart, how long to wait before judging the new process. */
  settleMs?: number;
  now?: () => number;
}

export interface DatabaseWatchdog {
  /** One probe and what follows from it; `start` runs it on an interval. */
  check(): Promise<void>;
  start(): void;
  stop(): void;
  readonly restarts: number;
}

export function createDatabaseWatchdog(options: DatabaseWatchdogOptions): DatabaseWatchdog {
  const unresponsiveMs = options.unresponsiveMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 2_000;
  const settleMs = options.settleMs ?? 15_000;
  const now = options.now ?? Date.now;
  let downSince: number | null = null;
  let quietUntil = 0;
  let restarts = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  async function check(): Promise<void> {
    if (now() < quietUntil) return;
    const status = await options.probe();
    if (status !== 'down') {
      // `unknown` (the API restarting under tsx watch) is no evidence either way.
      if (status === 'up') downSince = null;
      return;
    }
    downSince ??= now();
    const downFor = now() - downSince;
    if (downFor < unresponsiveMs) return;
    options.say(
      `mongodb     unresponsive for ${Math.round(downFor / 1000)} s according to /ready: restarting the database process (data kept)`,
    );
    downSince = null;
    restarts += 1;
    try {
      await options.restart();
      options.say('mongodb     restarted');
    } catch (err) {
      options.say(`mongodb     restart failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    quietUntil = now() + settleMs;
  }

  return {
    check,
    start() {
      const tick = () => {
        if (running) return;
        running = true;
        void check().finally(() => {
          running = false;
        });
      };
      timer = setInterval(tick, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
    get restarts() {
      return restarts;
    },
  };
}

/** Reads the database's status from the API's /ready answer, within `timeoutMs`. */
export async function probeReadyDatabase(readyUrl: string, timeoutMs = 3_000): Promise<DatabaseStatus> {
  try {
    const response = await fetch(readyUrl, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await response.json()) as { checks?: { mongo?: { status?: string } } };
    const status = body.checks?.mongo?.status;
    return status === 'up' || status === 'down' ? status : 'unknown';
  } catch {
    return 'unknown';
  }
}

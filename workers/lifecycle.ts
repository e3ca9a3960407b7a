import { Runtime, type RuntimeOptions, type Worker } from '@temporalio/worker';
import type { Logger } from '../src/logging/logger';

/** The signals that stop a worker process: SIGTERM from systemd, SIGINT from a terminal's Ctrl-C. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export interface WorkerLifecycle {
  /**
   * Runs the workers (one per task queue this process serves) until a stop signal has drained them all; rejects
   * when one fails or misses its force time.
   */
  run(...workers: Worker[]): Promise<void>;
}

/**
 * Installs the Temporal Runtime (which must precede any NativeConnection or Worker) with our own stop signals.
 *
 * The SDK's own handlers only act once a worker runs: a SIGTERM that arrives while the process is still connecting,
 * reconciling schedules or bundling is swallowed and start-up carries on, so `systemctl stop` would wait for its
 * timeout and end in SIGKILL. Here a stop before `run()` ends the process at once with code 0 (no task has been
 * taken yet, and every start-up step is idempotent), and a stop while running calls `worker.shutdown()`: polling
 * stops, in-flight activities get WORKER_SHUTDOWN_GRACE_MS to finish, and `run()` resolves once they have drained.
 * A second stop signal while draining only logs; WORKER_SHUTDOWN_FORCE_MS bounds the wait.
 */
export function installWorkerRuntime(options: Omit<RuntimeOptions, 'shutdownSignals'>, logger: Logger, name: string): WorkerLifecycle {
  Runtime.install({ ...options, shutdownSignals: [] });
  let running: Worker[] = [];
  const stop = (signal: NodeJS.Signals) => {
    if (running.length === 0) {
      logger.info(`${name} stopped during start-up`, { signal });
      process.exit(0);
    }
    const live = running.filter((worker) => worker.getState() === 'RUNNING');
    if (live.length === 0) {
      logger.info(`${name} already stopping; waiting for in-flight tasks`, { signal, state: running[0]!.getState() });
      return;
    }
    logger.info(`${name} stopping`, { signal });
    for (const worker of live) worker.shutdown();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, stop);

  return {
    async run(...workers: Worker[]): Promise<void> {
      running = workers;
      // run() moves a worker to RUNNING before its first await, so a signal handled after this line can shut it down.
      await Promise.all(workers.map((worker) => worker.run()));
    },
  };
}

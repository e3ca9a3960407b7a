import type { Client } from '@temporalio/client';
import type { Logger } from '../logging/logger';
import type { Metrics } from './index';

/** Most schedules described per round; a namespace of this product holds a handful. */
const MAX_SCHEDULES = 50;

/**
 * Reads the namespace's Temporal schedules into the schedule metrics (missed catch-up windows, last and next action
 * times), so an alert can see a schedule that stopped firing. The Temporal SDK's metrics say nothing about schedules,
 * which the server runs. Returns a function that stops the polling.
 */
export function startScheduleMetrics(options: { client: Client; metrics: Metrics; logger: Logger; intervalMs: number }): () => void {
  const { client, metrics, logger } = options;
  let running = false;
  const readOnce = async () => {
    if (running) return;
    running = true;
    try {
      const seen = new Set<string>();
      for await (const summary of client.schedule.list()) {
        if (seen.size >= MAX_SCHEDULES) break;
        seen.add(summary.scheduleId);
        const description = await client.schedule.getHandle(summary.scheduleId).describe();
        const labels = { schedule_id: summary.scheduleId };
        const { info } = description;
        metrics.scheduleMissedActions.set(labels, info.numActionsMissedCatchupWindow);
        const last = info.recentActions.at(-1)?.takenAt;
        metrics.scheduleLastActionTime.set(labels, last ? last.getTime() / 1000 : 0);
        const next = info.nextActionTimes[0];
        if (next && !description.state.paused) metrics.scheduleNextActionTime.set(labels, next.getTime() / 1000);
        else metrics.scheduleNextActionTime.remove(labels);
      }
      // A deleted schedule's series go away with it.
      for (const gauge of [metrics.scheduleMissedActions, metrics.scheduleLastActionTime, metrics.scheduleNextActionTime]) {
        for (const value of (await gauge.get()).values) {
          const id = value.labels.schedule_id;
          if (typeof id === 'string' && !seen.has(id)) gauge.remove({ schedule_id: id });
        }
      }
    } catch (err) {
      logger.warn('schedule metrics not read', { err });
    } finally {
      running = false;
    }
  };
  void readOnce();
  const timer = setInterval(() => void readOnce(), options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Seconds per activity type in a workflow's history, scheduled → completed, summed over its calls. */
export function activitySeconds(events: HistoryEvent[]): Record<string, number> {
  const seconds = (e: HistoryEvent) => Number(e.eventTime?.seconds ?? 0) + (e.eventTime?.nanos ?? 0) / 1e9;
  const scheduled = new Map<string, { type: string; at: number }>();
  const totals: Record<string, number> = {};
  for (const e of events) {
    const attrs = e.activityTaskScheduledEventAttributes;
    if (attrs) scheduled.set(String(e.eventId), { type: attrs.activityType?.name ?? '?', at: seconds(e) });
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) {
      const start = scheduled.get(String(completed.scheduledEventId));
      if (start) totals[start.type] = (totals[start.type] ?? 0) + seconds(e) - start.at;
    }
  }
  return totals;
}

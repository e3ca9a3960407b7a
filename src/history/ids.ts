/** Workflow, schedule and record ids of the history archive; no other code concatenates these. */

export const HISTORY_ARCHIVE_SCHEDULE_ID = 'history-archive-schedule';
/** Prefix of the runs the schedule starts (the schedule appends the tick time). */
export const SCHEDULED_HISTORY_ARCHIVE_WORKFLOW_ID = 'history-archive-scheduled';
/** A run started by hand (CLI, tests): one at a time, like the scheduled one. */
export const HISTORY_ARCHIVE_WORKFLOW_ID = 'history-archive';

/** The `_id` of an archived history: a run id is a UUID, so `@` cannot be ambiguous. */
export function archivedHistoryId(workflowId: string, runId: string): string {
  return `${workflowId}@${runId}`;
}

/** The archive's one watermark document. */
export const HISTORY_WATERMARK_ID = 'closed-executions';

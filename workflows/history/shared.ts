/** Types shared by the history archive workflow, its activities and its callers (CLI, tests). Type imports only. */

export type HistoryArchiveTrigger = 'schedule' | 'cli' | 'test';

export interface HistoryArchiveInput {
  requestedBy: HistoryArchiveTrigger;
  /** Histories per activity call (HISTORY_ARCHIVE_BATCH). */
  batch: number;
  /** Executions that closed less than this long ago are left for the next run. */
  settleSeconds: number;
}

export interface ArchiveBatchResult {
  /** Histories written by this call. */
  archived: number;
  /** Closed runs found that were already in the archive (a retry or an overlap). */
  alreadyArchived: number;
  /** The watermark after this call (ISO time): everything that closed before it is archived. */
  closedBefore: string;
  /** True when runs in the window are left for another call. */
  more: boolean;
}

export interface HistoryArchiveReport {
  archived: number;
  alreadyArchived: number;
  batches: number;
  closedBefore: string;
  /** True when the run stopped at its batch limit with work left: the next run continues. */
  more: boolean;
}

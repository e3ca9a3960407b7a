import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { HistoryArchiveActivities } from '../../activities/history/historyArchiveActivities';
import { WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import type { HistoryArchiveInput, HistoryArchiveReport } from './shared';

// A batch lists visibility and fetches up to `batch` histories, heartbeating per history; every write is an
// idempotent upsert and the watermark only moves after its histories are stored, so retrying a batch is safe.
const archive = proxyActivities<HistoryArchiveActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10 },
});

/** Batches one run takes at most, so its own history stays small; the next run resumes from the watermark. */
const MAX_BATCHES = 50;

/**
 * Copies the histories of closed workflow runs into MongoDB (`workflow_histories`), batch by batch from the
 * watermark, so they outlive the namespace retention and an auditor can replay them years later.
 */
export async function historyArchiveWorkflow(input: HistoryArchiveInput): Promise<HistoryArchiveReport> {
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'history-archive' },
    { key: WORKFLOW_STATUS, value: 'archiving' },
  ]);
  const report: HistoryArchiveReport = { archived: 0, alreadyArchived: 0, batches: 0, closedBefore: '', more: true };
  while (report.more && report.batches < MAX_BATCHES) {
    const batch = await archive.archiveClosedHistories({ batch: input.batch, settleSeconds: input.settleSeconds });
    report.batches += 1;
    report.archived += batch.archived;
    report.alreadyArchived += batch.alreadyArchived;
    report.closedBefore = batch.closedBefore;
    report.more = batch.more;
  }
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: report.more ? 'partial' : 'completed' }]);
  return report;
}

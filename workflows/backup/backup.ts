import { ActivityFailure, ApplicationFailure, proxyActivities, upsertSearchAttributes, uuid4 } from '@temporalio/workflow';
import type { BackupActivities } from '../../activities/backup/backupActivities';
import { backupIdAt, isValidBackupId } from '../../src/backup/ids';
import { WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import type { BackupInput, BackupReport, RestoreCheckInput, RestoreCheckReport, RestoreCollectionCheck, RestoredSummary } from './shared';

// A dump reads every collection; it heartbeats per batch, so a dead worker is noticed within a minute while a large
// database may take long. Retries rewrite the same backup id from the start.
const dumping = proxyActivities<BackupActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 5 },
});

// Retention, checks and the scratch drop are short; a few quick retries cover a database that blinks.
const quick = proxyActivities<BackupActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});

/**
 * Runbook "Backups": the nightly backup. Dumps the database into the backup store under one backup id, then applies
 * the retention policy (7 daily, 4 weekly, 12 monthly by default). Id `backup-<backupId>` when started by hand;
 * the schedule starts `backup-scheduled-<tick time>`.
 */
export async function backupWorkflow(input: BackupInput): Promise<BackupReport> {
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'backup' },
    { key: WORKFLOW_STATUS, value: 'running' },
  ]);
  try {
    const backupId = input.backupId ?? backupIdAt(new Date(Date.now()));
    if (!isValidBackupId(backupId)) throw ApplicationFailure.nonRetryable(`invalid backup id: ${backupId}`, 'InvalidBackupId');
    const dump = await dumping.dumpDatabase({ backupId, createdAt: new Date(Date.now()).toISOString() });
    const retention = await quick.applyBackupRetention();
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'completed' }]);
    return { backupId, requestedBy: input.requestedBy, dump, retention };
  } catch (err) {
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'failed' }]);
    throw err;
  }
}

/**
 * Runbook "Backups": the quarterly restore check. Restores a backup (the newest, unless named) into a scratch
 * database, counts every collection's documents and lists its indexes against the manifest, reports, and drops the
 * scratch database whatever happened. The report is the workflow's result, so it stays in the history.
 */
export async function restoreCheckWorkflow(input: RestoreCheckInput): Promise<RestoreCheckReport> {
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'restore-check' },
    { key: WORKFLOW_STATUS, value: 'running' },
  ]);
  const backupId = input.backupId ?? (await quick.latestBackupId());
  if (!backupId) {
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'failed' }]);
    throw ApplicationFailure.nonRetryable('no complete backup to check', 'BackupNotFound');
  }
  // A random scratch name (replay-safe): never the source, never shared by two checks.
  const scratchDatabase = await quick.scratchDatabaseFor(uuid4());
  const problems: string[] = [];
  let collections: RestoreCollectionCheck[] = [];
  try {
    let restored: RestoredSummary | undefined;
    try {
      restored = await dumping.restoreBackup({ backupId, database: scratchDatabase });
    } catch (err) {
      // A restore that fails is the check's answer, reported like a count mismatch; anything else is a bug.
      if (!(err instanceof ActivityFailure)) throw err;
      problems.push(`restore failed: ${err.cause?.message ?? err.message}`);
    }
    if (restored) collections = await quick.checkRestoredDatabase({ backupId, database: scratchDatabase, restored });
  } finally {
    await quick.dropScratchDatabase({ database: scratchDatabase });
  }
  for (const c of collections) {
    if (c.documents !== c.expectedDocuments) problems.push(`${c.name}: ${c.documents} documents, backup has ${c.expectedDocuments}`);
    if (c.missingIndexes.length > 0) problems.push(`${c.name}: missing indexes ${c.missingIndexes.join(', ')}`);
  }
  const report: RestoreCheckReport = {
    backupId,
    requestedBy: input.requestedBy,
    status: problems.length === 0 ? 'ok' : 'failed',
    scratchDatabase,
    collections,
    problems,
    scratchDropped: true,
  };
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: report.status }]);
  return report;
}

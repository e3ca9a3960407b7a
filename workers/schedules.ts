import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptions,
} from '@temporalio/client';
import { BACKUP_SCHEDULE_IDS, SCHEDULED_BACKUP_WORKFLOW_ID, SCHEDULED_RESTORE_CHECK_WORKFLOW_ID } from '../src/backup/ids';
import type { AppConfig } from '../src/config';
import type { Logger } from '../src/logging/logger';
import { POOL_SCHEDULE_IDS, RECONCILE_WORKFLOW_ID, sweepWorkflowId, topUpWorkflowId } from '../src/pool/ids';
import { SYSTEM_CHECK_SCHEDULE_ID } from '../src/system/ids';
import { HISTORY_ARCHIVE_SCHEDULE_ID, SCHEDULED_HISTORY_ARCHIVE_WORKFLOW_ID } from '../src/history/ids';
import { historyArchiveInput } from '../src/history/launch';
import { WORKFLOW_KIND } from '../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../workflows/shared/taskQueues';
import type { PoolAccounts, ScheduledPoolOperation } from '../workflows/pool/shared';
import type { SystemCheckInput } from '../workflows/system/shared';
import type { BackupInput, RestoreCheckInput } from '../workflows/backup/shared';

/** Every schedule this system owns. A managed id that the config switches off is deleted on reconcile. */
export const MANAGED_SCHEDULE_IDS = [
  SYSTEM_CHECK_SCHEDULE_ID,
  POOL_SCHEDULE_IDS.topUp,
  POOL_SCHEDULE_IDS.sweep,
  POOL_SCHEDULE_IDS.reconcile,
  BACKUP_SCHEDULE_IDS.nightly,
  BACKUP_SCHEDULE_IDS.restoreCheck,
  HISTORY_ARCHIVE_SCHEDULE_ID,
] as const;

const MANAGED_NOTE = 'Managed by the PatchProof worker: edits are overwritten at its next start.';

/**
 * The schedules the configuration asks for (the pool's periodic work runs here, not from cron). `accounts` are the
 * pool's resolved addresses; without them (KMS unreachable at start) the sweep schedule is left as it is.
 */
export function desiredSchedules(config: AppConfig, accounts?: PoolAccounts): ScheduleOptions[] {
  const schedules: ScheduleOptions[] = [];
  const poolSchedule = (
    scheduleId: string,
    spec: ScheduleOptions['spec'],
    request: ScheduledPoolOperation,
    catchupWindow: string,
  ): ScheduleOptions => ({
    scheduleId,
    spec,
    action: {
      type: 'startWorkflow',
      workflowType: 'scheduledPoolOperationWorkflow',
      workflowId: `${request.workflowId}-scheduled`,
      taskQueue: TASK_QUEUES.main,
      args: [request],
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: `scheduled-${request.operation}` }],
    },
    // One run at a time (a run also holds the operation's own id); after an outage, one catch-up run at most.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: catchupWindow as `${number}${'m' | 'h'}`, pauseOnFailure: false },
    state: { note: MANAGED_NOTE },
  });
  const pool = config.pool;
  if (pool.topUpEvery) {
    schedules.push(
      poolSchedule(
        POOL_SCHEDULE_IDS.topUp,
        { intervals: [{ every: pool.topUpEvery as `${number}${'s' | 'm' | 'h' | 'd'}` }] },
        { operation: 'top-up', workflowId: topUpWorkflowId(pool.fundingKeyIdentifier), input: { requestedBy: 'schedule' } },
        '10 minutes',
      ),
    );
  }
  if (pool.sweepCron && accounts) {
    schedules.push(
      poolSchedule(
        POOL_SCHEDULE_IDS.sweep,
        { cronExpressions: [pool.sweepCron], timezone: pool.scheduleTimezone },
        {
          operation: 'sweep',
          workflowId: sweepWorkflowId(accounts.change.address),
          input: {
            requestedBy: 'schedule',
            changeAddress: accounts.change.address,
            changeKeyId: accounts.change.keyIdentifier,
            destinationAddress: accounts.funding.address,
          },
        },
        '2 hours',
      ),
    );
  }
  if (pool.reconcileEvery) {
    schedules.push(
      poolSchedule(
        POOL_SCHEDULE_IDS.reconcile,
        { intervals: [{ every: pool.reconcileEvery as `${number}${'s' | 'm' | 'h' | 'd'}` }] },
        { operation: 'reconcile', workflowId: RECONCILE_WORKFLOW_ID },
        '30 minutes',
      ),
    );
  }
  if (config.worker.systemCheckEvery) {
    const input: SystemCheckInput = { requestedBy: 'schedule' };
    schedules.push({
      scheduleId: SYSTEM_CHECK_SCHEDULE_ID,
      spec: { intervals: [{ every: config.worker.systemCheckEvery as `${number}${'s' | 'm' | 'h' | 'd'}` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'systemCheckWorkflow',
        workflowId: 'system-check-scheduled',
        taskQueue: TASK_QUEUES.main,
        args: [input],
        typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'system-check' }],
        workflowExecutionTimeout: '1 minute',
      },
      // One check at a time; after an outage run at most the latest missed one, not a burst.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '10 minutes', pauseOnFailure: false },
      state: { note: MANAGED_NOTE },
    });
  }
  schedules.push(...backupSchedules(config));
  if (config.historyArchive.every) {
    schedules.push({
      scheduleId: HISTORY_ARCHIVE_SCHEDULE_ID,
      spec: { intervals: [{ every: config.historyArchive.every as `${number}${'s' | 'm' | 'h' | 'd'}` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'historyArchiveWorkflow',
        workflowId: SCHEDULED_HISTORY_ARCHIVE_WORKFLOW_ID,
        taskQueue: TASK_QUEUES.main,
        args: [historyArchiveInput(config.historyArchive, 'schedule')],
        typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'history-archive' }],
      },
      // One run at a time (the watermark has one writer); a run missed in an outage is simply the next one's work.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false },
      state: { note: MANAGED_NOTE },
    });
  }
  return schedules;
}

/** The nightly backup and the quarterly restore check, each off when its cron is `off`. Cron lines are in UTC. */
function backupSchedules(config: AppConfig): ScheduleOptions[] {
  const schedules: ScheduleOptions[] = [];
  const backup = (
    scheduleId: string,
    cron: string,
    workflowType: string,
    workflowId: string,
    args: unknown[],
    kind: string,
  ): ScheduleOptions => ({
    scheduleId,
    spec: { cronExpressions: [cron] },
    action: {
      type: 'startWorkflow',
      workflowType,
      workflowId,
      taskQueue: TASK_QUEUES.main,
      args,
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: kind }],
    },
    // One at a time; a backup missed in an outage is taken late rather than skipped (6 h), but never twice.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '6 hours', pauseOnFailure: false },
    state: { note: MANAGED_NOTE },
  });
  if (config.backup.cron) {
    const input: BackupInput = { requestedBy: 'schedule' };
    schedules.push(
      backup(BACKUP_SCHEDULE_IDS.nightly, config.backup.cron, 'backupWorkflow', SCHEDULED_BACKUP_WORKFLOW_ID, [input], 'backup'),
    );
  }
  if (config.backup.restoreCheckCron) {
    const input: RestoreCheckInput = { requestedBy: 'schedule' };
    schedules.push(
      backup(
        BACKUP_SCHEDULE_IDS.restoreCheck,
        config.backup.restoreCheckCron,
        'restoreCheckWorkflow',
        SCHEDULED_RESTORE_CHECK_WORKFLOW_ID,
        [input],
        'restore-check',
      ),
    );
  }
  return schedules;
}

export interface ReconcileResult {
  created: string[];
  updated: string[];
  deleted: string[];
}

/**
 * Makes the server's schedules match the configuration: create each one, or update it when it already exists
 * (ScheduleAlreadyRunning), and delete managed schedules that the configuration no longer wants.
 */
export async function reconcileSchedules(
  client: Client,
  desired: ScheduleOptions[],
  logger?: Logger,
  options: { keep?: string[] } = {},
): Promise<ReconcileResult> {
  const result: ReconcileResult = { created: [], updated: [], deleted: [] };
  for (const options of desired) {
    try {
      await client.schedule.create(options);
      result.created.push(options.scheduleId);
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      await client.schedule.getHandle(options.scheduleId).update((previous) => ({
        ...previous,
        spec: options.spec,
        action: options.action,
        policies: { ...previous.policies, ...options.policies },
      }));
      result.updated.push(options.scheduleId);
    }
  }
  const wanted = new Set([...desired.map((s) => s.scheduleId), ...(options.keep ?? [])]);
  for (const scheduleId of MANAGED_SCHEDULE_IDS.filter((id) => !wanted.has(id))) {
    try {
      await client.schedule.getHandle(scheduleId).delete();
      result.deleted.push(scheduleId);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  logger?.info('schedules reconciled', { ...result });
  return result;
}

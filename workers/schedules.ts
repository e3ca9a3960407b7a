import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptions,
} from '@temporalio/client';
import type { AppConfig } from '../src/config';
import type { Logger } from '../src/logging/logger';
import { SYSTEM_CHECK_SCHEDULE_ID } from '../src/system/ids';
import { WORKFLOW_KIND } from '../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../workflows/shared/taskQueues';
import type { SystemCheckInput } from '../workflows/system/shared';

/** Every schedule this system owns. A managed id that the config switches off is deleted on reconcile. */
export const MANAGED_SCHEDULE_IDS = [SYSTEM_CHECK_SCHEDULE_ID] as const;

/** The schedules the configuration asks for; cron lines of the predecessor become these. */
export function desiredSchedules(config: AppConfig): ScheduleOptions[] {
  const schedules: ScheduleOptions[] = [];
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
      state: { note: 'Managed by the PatchProof worker: edits are overwritten at its next start.' },
    });
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
export async function reconcileSchedules(client: Client, desired: ScheduleOptions[], logger?: Logger): Promise<ReconcileResult> {
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
  const wanted = new Set(desired.map((s) => s.scheduleId));
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

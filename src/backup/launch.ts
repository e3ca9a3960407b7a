import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { backupWorkflow, restoreCheckWorkflow } from '../../workflows/backup/backup';
import type { BackupTrigger } from '../../workflows/backup/shared';
import { WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { startOnce, type LaunchResult } from '../temporal/launch';
import { backupIdAt, backupWorkflowId, restoreCheckWorkflowId } from './ids';

/** Starts a backup; the same backup id attaches to the run that holds it (or finds it done). */
export async function startBackup(
  client: Client,
  input: { backupId?: string; requestedBy: BackupTrigger },
): Promise<LaunchResult & { backupId: string }> {
  const backupId = input.backupId ?? backupIdAt(new Date());
  const result = await startOnce<typeof backupWorkflow>(client, 'backupWorkflow', {
    workflowId: backupWorkflowId(backupId),
    taskQueue: TASK_QUEUES.main,
    args: [{ backupId, requestedBy: input.requestedBy }],
    typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'backup' }],
  });
  return { ...result, backupId };
}

/** Starts a restore check of one backup (the newest when none is named). */
export async function startRestoreCheck(
  client: Client,
  input: { checkId?: string; backupId?: string; requestedBy: BackupTrigger },
): Promise<LaunchResult & { checkId: string }> {
  const checkId = input.checkId ?? randomUUID();
  const result = await startOnce<typeof restoreCheckWorkflow>(client, 'restoreCheckWorkflow', {
    workflowId: restoreCheckWorkflowId(checkId),
    taskQueue: TASK_QUEUES.main,
    args: [{ ...(input.backupId && { backupId: input.backupId }), requestedBy: input.requestedBy }],
    typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'restore-check' }],
  });
  return { ...result, checkId };
}

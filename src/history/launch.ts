import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { HistoryArchiveConfig } from '../config';
import type { historyArchiveWorkflow } from '../../workflows/history/archive';
import type { HistoryArchiveInput, HistoryArchiveTrigger } from '../../workflows/history/shared';
import { WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { startOnce, type LaunchResult } from '../temporal/launch';
import { HISTORY_ARCHIVE_WORKFLOW_ID } from './ids';

export function historyArchiveInput(config: HistoryArchiveConfig, requestedBy: HistoryArchiveTrigger): HistoryArchiveInput {
  return { requestedBy, batch: config.batch, settleSeconds: config.settleSeconds };
}

/** Starts an archive run by hand (CLI, tests); `alreadyStarted` when one started by hand still runs. */
export function startHistoryArchive(client: Client, input: HistoryArchiveInput): Promise<LaunchResult> {
  return startOnce<typeof historyArchiveWorkflow>(client, 'historyArchiveWorkflow', {
    workflowId: HISTORY_ARCHIVE_WORKFLOW_ID,
    taskQueue: TASK_QUEUES.main,
    args: [input],
    typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'history-archive' }],
    // The id is reused by every later run; only a running one blocks a new start.
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
  });
}

import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Model } from 'mongoose';
import type { SystemCheckDocument } from '../db/models/systemCheck';
import { WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import {
  systemCheckProgressQuery,
  type SystemCheckProgress,
  type SystemCheckReport,
  type SystemCheckTrigger,
} from '../../workflows/system/shared';
import type { systemCheckWorkflow } from '../../workflows/system/systemCheck';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { systemCheckWorkflowId } from './ids';

export interface StartSystemCheckInput {
  checkId?: string;
  requestedBy: SystemCheckTrigger;
}

export async function startSystemCheck(
  client: Client,
  input: StartSystemCheckInput,
  starts?: StartCounter,
): Promise<LaunchResult & { checkId: string }> {
  const checkId = input.checkId ?? randomUUID();
  const result = await startOnce<typeof systemCheckWorkflow>(
    client,
    'systemCheckWorkflow',
    {
      workflowId: systemCheckWorkflowId(checkId),
      taskQueue: TASK_QUEUES.main,
      args: [{ checkId, requestedBy: input.requestedBy }],
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'system-check' }],
      // A check that cannot finish in a minute is itself the answer; don't leave it running for ever.
      workflowExecutionTimeout: '1 minute',
    },
    starts,
  );
  return { ...result, checkId };
}

export type SystemCheckStatus =
  | { state: 'running'; progress: SystemCheckProgress }
  | { state: 'completed'; report: SystemCheckReport }
  | { state: 'failed'; reason: string }
  | { state: 'not_found' };

/**
 * Reads a check's state from Temporal: the live query while it runs, the result once it has completed. When
 * Temporal no longer knows the run (retention passed, or a scheduled run addressed by its derived check id), the
 * Mongo projection answers if one is given.
 */
export async function getSystemCheckStatus(
  client: Client,
  checkId: string,
  reports?: Model<SystemCheckDocument>,
): Promise<SystemCheckStatus> {
  const handle = client.workflow.getHandle(systemCheckWorkflowId(checkId));
  try {
    const description = await handle.describe();
    switch (description.status.name) {
      case 'RUNNING':
        return { state: 'running', progress: await handle.query(systemCheckProgressQuery) };
      case 'COMPLETED':
        return { state: 'completed', report: (await handle.result()) as SystemCheckReport };
      default:
        return { state: 'failed', reason: description.status.name.toLowerCase() };
    }
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    const stored = await reports?.findById(checkId).lean();
    if (!stored) return { state: 'not_found' };
    const { _id: _ignored, ...report } = stored;
    return { state: 'completed', report };
  }
}

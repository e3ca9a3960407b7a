import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client, type WorkflowStartOptions } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import type { Metrics } from '../metrics';

export interface LaunchResult {
  workflowId: string;
  runId: string;
  /** True when a run with this ID already existed (running, or closed and not reusable), so nothing new started. */
  alreadyStarted: boolean;
}

/**
 * Where starts are counted (`patchproof_workflow_starts_total`): the API passes its metrics; the CLI and the workers
 * pass none, since the counter is about starts requested through the API.
 */
export type StartCounter = Pick<Metrics, 'workflowStarts'>;

/**
 * Starts a workflow whose ID is a business key, so that a second start for the same key never makes a second run.
 * This is the one place that turns WorkflowExecutionAlreadyStartedError into "already started", and the one place
 * that counts starts (started, already_started, failed); the API and the CLI call the typed launch functions built
 * on it.
 */
export async function startOnce<W extends Workflow>(
  client: Client,
  workflowType: string | W,
  options: WorkflowStartOptions<W>,
  starts?: StartCounter,
): Promise<LaunchResult> {
  const count = (outcome: 'started' | 'already_started' | 'failed') =>
    starts?.workflowStarts.inc({ workflow_type: typeof workflowType === 'string' ? workflowType : workflowType.name, outcome });
  let result: LaunchResult;
  try {
    result = await startOrFindRun(client, workflowType, options);
  } catch (err) {
    count('failed');
    throw err;
  }
  count(result.alreadyStarted ? 'already_started' : 'started');
  return result;
}

async function startOrFindRun<W extends Workflow>(
  client: Client,
  workflowType: string | W,
  options: WorkflowStartOptions<W>,
): Promise<LaunchResult> {
  try {
    const handle = await client.workflow.start(workflowType, {
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      ...options,
    });
    return { workflowId: handle.workflowId, runId: handle.firstExecutionRunId, alreadyStarted: false };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const description = await client.workflow.getHandle(options.workflowId).describe();
    return { workflowId: options.workflowId, runId: description.runId, alreadyStarted: true };
  }
}

import { WorkflowIdReusePolicy, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { DomainError } from '../errors';
import type { claimWorkflow } from '../../workflows/claim/claim';
import { approveClaimUpdate, claimStateQuery, type ClaimInput, type ClaimState } from '../../workflows/claim/shared';
import { PATCH_UID, WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { claimWorkflowId } from './ids';

/** Starts a claim for a signed intent; the same intent (uid and nonce) never starts twice. */
export function startClaim(client: Client, input: ClaimInput, starts?: StartCounter): Promise<LaunchResult> {
  return startOnce<typeof claimWorkflow>(
    client,
    'claimWorkflow',
    {
      workflowId: claimWorkflowId(input.uid, input.nonce),
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      taskQueue: TASK_QUEUES.main,
      args: [input],
      typedSearchAttributes: [
        { key: PATCH_UID, value: input.uid },
        { key: WORKFLOW_KIND, value: 'claim' },
      ],
    },
    starts,
  );
}

/** A claim's state: the live query while it runs, its result once closed; null when there is no such claim. */
export async function getClaimState(client: Client, claimId: string): Promise<ClaimState | null> {
  const handle = client.workflow.getHandle<typeof claimWorkflow>(claimId);
  try {
    const description = await handle.describe();
    if (description.status.name === 'RUNNING') return await handle.query(claimStateQuery);
    return await handle.result();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** A merchant approves a pending claim; a claim that is not pending (approved, expired, closed) is a conflict. */
export async function approveClaim(client: Client, claimId: string, approvedBy: string): Promise<ClaimState> {
  const handle = client.workflow.getHandle<typeof claimWorkflow>(claimId);
  try {
    return await handle.executeUpdate(approveClaimUpdate, { args: [{ approvedBy }] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new DomainError('CONFLICT', `The claim cannot be approved: ${err.cause?.message ?? err.message}.`, { reason: 'not_pending' });
    }
    if (err instanceof WorkflowNotFoundError) {
      const state = await getClaimState(client, claimId);
      if (!state) throw new DomainError('NOT_FOUND', 'No such claim.');
      throw new DomainError('CONFLICT', `The claim is ${state.status}.`, { reason: 'not_pending', status: state.status });
    }
    throw err;
  }
}

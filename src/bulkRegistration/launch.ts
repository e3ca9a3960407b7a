import type { Client } from '@temporalio/client';
import type { bulkRegistrationWorkflow } from '../../workflows/bulkRegistration/bulkRegistration';
import { BATCH_ID, TENANT_ID, WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { bulkRegistrationWorkflowId } from './ids';
import { DEFAULT_TENANT_ID, type Actor } from '../tenancy/apiKeys';

/** Starts a batch's workflow; the id is the batch's, so a second start (a retried request) reports the first. */
export function startBulkRegistration(client: Client, batchId: string, starts?: StartCounter, actor?: Actor): Promise<LaunchResult> {
  return startOnce<typeof bulkRegistrationWorkflow>(
    client,
    'bulkRegistrationWorkflow',
    {
      workflowId: bulkRegistrationWorkflowId(batchId),
      taskQueue: TASK_QUEUES.main,
      args: [{ batchId }],
      typedSearchAttributes: [
        { key: BATCH_ID, value: batchId },
        { key: WORKFLOW_KIND, value: 'bulk-registration' },
        { key: TENANT_ID, value: actor?.tenantId ?? DEFAULT_TENANT_ID },
      ],
      ...(actor && { memo: { actor } }),
    },
    starts,
  );
}

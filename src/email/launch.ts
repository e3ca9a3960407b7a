import type { Client } from '@temporalio/client';
import { WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import type { emailDeliveryWorkflow } from '../../workflows/email/emailDelivery';
import { emailDeliveryStatusQuery, type EmailDeliveryStatus } from '../../workflows/email/shared';
import { startOnce, type LaunchResult } from '../temporal/launch';
import { emailDeliveryWorkflowId } from './ids';

/** Starts the delivery of a stored message; idempotent per message id. */
export function startEmailDelivery(client: Client, messageId: string): Promise<LaunchResult> {
  return startOnce<typeof emailDeliveryWorkflow>(client, 'emailDeliveryWorkflow', {
    workflowId: emailDeliveryWorkflowId(messageId),
    taskQueue: TASK_QUEUES.email,
    args: [{ messageId }],
    typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'email-delivery' }],
    // The retry policy gives up within about an hour; this only bounds a workflow nobody polls.
    workflowExecutionTimeout: '2 hours',
  });
}

export async function getEmailDeliveryStatus(client: Client, messageId: string): Promise<EmailDeliveryStatus> {
  return client.workflow.getHandle(emailDeliveryWorkflowId(messageId)).query(emailDeliveryStatusQuery);
}

import { ActivityFailure, ApplicationFailure, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { WebhookActivities } from '../../activities/webhooks/webhookActivities';
import { WORKFLOW_STATUS } from '../shared/searchAttributes';
import { WEBHOOK_FAILURES, type WebhookDeliveryInput, type WebhookDeliveryResult } from './shared';

// Writing the outcome to our own store: a few quick retries.
const log = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/**
 * Delivers one event to one endpoint. Id `webhook-delivery-<eventId>-<endpointId>`, so emitting the same event
 * again is the same delivery (a redelivery has its own id). The attempts are the activity's retries: exponential
 * backoff, held by the server as durable timers, for up to the retry window; each attempt is in the endpoint's
 * delivery log. Ends with the outcome rather than a failure: a receiver that stayed down is not our fault.
 */
export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<WebhookDeliveryResult> {
  const deliveryId = workflowInfo().workflowId;
  const send = proxyActivities<WebhookActivities>({
    // One attempt: the HTTP deadline (WEBHOOK_TIMEOUT_MS, at most 60 s) plus DNS and the log writes.
    startToCloseTimeout: '2 minutes',
    // Attempts stop when the window is over, whatever the backoff has reached.
    scheduleToCloseTimeout: input.retry.windowMs,
    retry: {
      initialInterval: input.retry.initialIntervalMs,
      backoffCoefficient: 2,
      maximumInterval: input.retry.maximumIntervalMs,
      nonRetryableErrorTypes: [WEBHOOK_FAILURES.gone, WEBHOOK_FAILURES.refusedTarget],
    },
  });

  try {
    const sent = await send.attemptWebhookDelivery({
      deliveryId,
      eventId: input.eventId,
      endpointId: input.endpointId,
      redeliveryOf: input.redeliveryOf,
    });
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'delivered' }]);
    return { status: 'succeeded', attempts: sent.attempt, statusCode: sent.statusCode, failure: null };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const failure = err.cause instanceof ApplicationFailure && err.cause.type ? err.cause.type : 'WebhookRetryWindowOver';
    const closed = await log.closeWebhookDelivery({ deliveryId, failure });
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'failed' }]);
    return { status: 'failed', attempts: closed.attempts, statusCode: closed.lastStatusCode, failure };
  }
}

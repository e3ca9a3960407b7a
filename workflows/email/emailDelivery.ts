import { ActivityFailure, ApplicationFailure, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { EmailActivities } from '../../activities/email/delivery';
import { WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import {
  EMAIL_FAILURES,
  emailDeliveryStatusQuery,
  type EmailDeliveryInput,
  type EmailDeliveryOutcome,
  type EmailDeliveryStatus,
} from './shared';

// SMTP relays throttle and greylist (4xx) for minutes: back off up to 5 minutes between tries, for about an hour in
// all, which is longer than a verification code lives. A 5xx or a missing message will not get better: stop at once.
const { deliverEmail } = proxyActivities<EmailActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 15,
    nonRetryableErrorTypes: [EMAIL_FAILURES.permanent, EMAIL_FAILURES.notFound, EMAIL_FAILURES.expired],
  },
});

// Our own write; keep trying, since the status is what operators and the API read.
const { recordEmailFailure } = proxyActivities<EmailActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 20 },
});

/** Runbook "Workers (Email)": render and send one stored message, and record how it went. */
export async function emailDeliveryWorkflow(input: EmailDeliveryInput): Promise<EmailDeliveryOutcome> {
  let status: EmailDeliveryStatus = { state: 'sending' };
  setHandler(emailDeliveryStatusQuery, () => status);
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'email-delivery' },
    { key: WORKFLOW_STATUS, value: 'sending' },
  ]);

  try {
    await deliverEmail(input.messageId);
    status = { state: 'sent' };
  } catch (err) {
    // Only a failed activity is an answer ("could not deliver"); anything else is a bug and fails the task.
    if (!(err instanceof ActivityFailure)) throw err;
    const reason = err.cause instanceof ApplicationFailure && err.cause.type ? err.cause.type : EMAIL_FAILURES.transient;
    await recordEmailFailure(input.messageId, reason);
    status = { state: 'failed', reason };
  }
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: status.state }]);
  return {
    messageId: input.messageId,
    status: status.state === 'sent' ? 'sent' : 'failed',
    ...(status.reason && { reason: status.reason }),
  };
}

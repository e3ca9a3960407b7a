import { ApplicationFailure } from '@temporalio/client';
import { emailDeliveryWorkflow } from '../../../workflows';
import { EMAIL_FAILURES } from '../../../workflows/email/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { mockActivities, withWorker } from '../../support/workflowWorker';

/** deliverEmail's retry policy in workflows/email/emailDelivery.ts. */
const DELIVERY_ATTEMPTS = 15;

describe('emailDeliveryWorkflow', () => {
  const server = timeSkippingEnvForBlock();

  function run(messageId: string, deliverEmail: () => Promise<{ smtpMessageId?: string }>) {
    const activities = mockActivities({ deliverEmail, recordEmailFailure: async () => undefined });
    const outcome = withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(emailDeliveryWorkflow, { taskQueue, workflowId: `email-${messageId}`, args: [{ messageId }] }),
    );
    return { activities, outcome };
  }

  it('reports a delivered message as sent', async () => {
    const { activities, outcome } = run('msg-sent', async () => ({ smtpMessageId: '<1@test>' }));
    expect(await outcome).toEqual({ messageId: 'msg-sent', status: 'sent' });
    expect(activities.deliverEmail).toHaveBeenCalledWith('msg-sent');
    expect(activities.recordEmailFailure).not.toHaveBeenCalled();
  });

  it('stops at once on a permanent SMTP failure and records its type', async () => {
    const { activities, outcome } = run('msg-rejected', async () => {
      throw ApplicationFailure.create({ message: '550 no such user', type: EMAIL_FAILURES.permanent });
    });
    expect(await outcome).toEqual({ messageId: 'msg-rejected', status: 'failed', reason: EMAIL_FAILURES.permanent });
    expect(activities.deliverEmail).toHaveBeenCalledTimes(1);
    expect(activities.recordEmailFailure).toHaveBeenCalledWith('msg-rejected', EMAIL_FAILURES.permanent);
  });

  it('retries a greylisting relay with backoff until the attempts run out, then records the failure', async () => {
    const { activities, outcome } = run('msg-greylisted', async () => {
      throw ApplicationFailure.retryable('451 try again later', EMAIL_FAILURES.transient);
    });
    expect(await outcome).toEqual({ messageId: 'msg-greylisted', status: 'failed', reason: EMAIL_FAILURES.transient });
    expect(activities.deliverEmail).toHaveBeenCalledTimes(DELIVERY_ATTEMPTS);
    expect(activities.recordEmailFailure).toHaveBeenCalledWith('msg-greylisted', EMAIL_FAILURES.transient);
  });
});

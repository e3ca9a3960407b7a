import { ApplicationFailure } from '@temporalio/client';
import { webhookDeliveryWorkflow } from '../../../workflows';
import { WEBHOOK_FAILURES } from '../../../workflows/webhooks/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const DAY_MS = 24 * 3_600_000;

describe('webhookDeliveryWorkflow', () => {
  const server = timeSkippingEnvForBlock();

  function run(id: string, attempt: () => Promise<{ attempt: number; statusCode: number | null }>) {
    const activities = mockActivities({
      attemptWebhookDelivery: attempt,
      closeWebhookDelivery: async () => ({ attempts: 3, lastStatusCode: 503 }),
    });
    const outcome = withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(webhookDeliveryWorkflow, {
        taskQueue,
        workflowId: `webhook-delivery-${id}`,
        args: [
          {
            eventId: 'evt_1',
            endpointId: 'we_1',
            tenantId: 'acme',
            redeliveryOf: null,
            retry: { initialIntervalMs: 30_000, maximumIntervalMs: 3_600_000, windowMs: DAY_MS },
          },
        ],
      }),
    );
    return { activities, outcome };
  }

  it('delivers after failed attempts, backing off between them, and reports the attempt that succeeded', async () => {
    let calls = 0;
    const { activities, outcome } = run('retried', async () => {
      calls += 1;
      if (calls <= 3) throw ApplicationFailure.retryable('503', WEBHOOK_FAILURES.attemptFailed);
      return { attempt: calls, statusCode: 200 };
    });
    expect(await outcome).toEqual({ status: 'succeeded', attempts: 4, statusCode: 200, failure: null });
    expect(activities.attemptWebhookDelivery).toHaveBeenCalledTimes(4);
    expect(activities.attemptWebhookDelivery).toHaveBeenCalledWith({
      deliveryId: 'webhook-delivery-retried',
      eventId: 'evt_1',
      endpointId: 'we_1',
      redeliveryOf: null,
    });
    expect(activities.closeWebhookDelivery).not.toHaveBeenCalled();
  });

  it('keeps trying for the 24 h window (about 30 attempts with 30 s doubling to 1 h), then logs the delivery failed', async () => {
    const started = await server.env.currentTimeMs();
    const { activities, outcome } = run('down', async () => {
      throw ApplicationFailure.retryable('connection refused', WEBHOOK_FAILURES.attemptFailed);
    });
    const result = await outcome;
    expect(result.status).toBe('failed');
    const calls = activities.attemptWebhookDelivery.mock.calls.length;
    expect(calls).toBeGreaterThan(20);
    expect(calls).toBeLessThan(40);
    expect((await server.env.currentTimeMs()) - started).toBeGreaterThanOrEqual(DAY_MS - 3_600_000);
    expect(activities.closeWebhookDelivery).toHaveBeenCalledTimes(1);
  });

  it('stops at once when the endpoint is gone or its URL is refused', async () => {
    for (const type of [WEBHOOK_FAILURES.gone, WEBHOOK_FAILURES.refusedTarget]) {
      const { activities, outcome } = run(`stop-${type}`, async () => {
        throw ApplicationFailure.nonRetryable('no', type);
      });
      expect(await outcome).toMatchObject({ status: 'failed', failure: type });
      expect(activities.attemptWebhookDelivery).toHaveBeenCalledTimes(1);
    }
  });
});

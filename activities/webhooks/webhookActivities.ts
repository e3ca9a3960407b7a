import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Connection } from 'mongoose';
import type { WebhookConfig } from '../../src/config';
import type { Logger } from '../../src/logging/logger';
import { signingSecrets } from '../../src/webhooks/endpoints';
import type { WebhookEvent } from '../../src/webhooks/events';
import { webhookDeliveryModel, webhookEndpointModel, webhookEventModel, type DeliveryAttempt } from '../../src/webhooks/models';
import { postToPinnedTarget, type DeliveryErrorClass } from '../../src/webhooks/post';
import { EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signatureHeader } from '../../src/webhooks/signature';
import { systemResolver } from '../../src/webhooks/resolver';
import { resolveWebhookTarget, WebhookTargetRefused, type Resolver } from '../../src/webhooks/ssrfGuard';
import { WEBHOOK_FAILURES, type WebhookAttemptResult } from '../../workflows/webhooks/shared';

export interface WebhookActivityDeps {
  mongo: Connection;
  logger: Logger;
  webhooks: WebhookConfig;
  /** DNS for the SSRF guard; the system resolver unless a test passes one. */
  resolveHost?: Resolver;
}

/**
 * Activities of the webhook delivery workflow. The secret is read here, by endpoint id, and used only to sign: it
 * is never an input, a result, a log field or an error message. Each attempt is appended to the delivery log
 * once (keyed by its attempt number); a delivery already logged as succeeded is not sent again.
 */
export function createWebhookActivities(deps: WebhookActivityDeps) {
  const { mongo, logger, webhooks } = deps;
  const deliveries = webhookDeliveryModel(mongo);
  const resolveHost = deps.resolveHost ?? systemResolver(webhooks.timeoutMs);

  async function logAttempt(deliveryId: string, entry: DeliveryAttempt, status: 'pending' | 'succeeded'): Promise<void> {
    // A retried write of the same attempt number adds nothing.
    await deliveries.updateOne(
      { _id: deliveryId, 'attempts.attempt': { $ne: entry.attempt } },
      { $push: { attempts: entry }, $set: { status, updatedAt: entry.at } },
    );
  }

  return {
    async attemptWebhookDelivery(input: {
      deliveryId: string;
      eventId: string;
      endpointId: string;
      redeliveryOf: string | null;
    }): Promise<WebhookAttemptResult> {
      const attempt = Context.current().info.attempt;
      const [endpoint, event] = await Promise.all([
        webhookEndpointModel(mongo).findById(input.endpointId).lean(),
        webhookEventModel(mongo).findById(input.eventId).lean(),
      ]);
      if (!endpoint || !event) throw ApplicationFailure.nonRetryable('the endpoint or the event is gone', WEBHOOK_FAILURES.gone);
      const now = new Date();
      await deliveries.updateOne(
        { _id: input.deliveryId },
        {
          $setOnInsert: {
            _id: input.deliveryId,
            tenantId: endpoint.tenantId,
            endpointId: endpoint._id,
            eventId: event._id,
            eventType: event.type,
            redeliveryOf: input.redeliveryOf,
            status: 'pending',
            attempts: [],
            createdAt: now,
            updatedAt: now,
          },
        },
        { upsert: true },
      );
      const logged = await deliveries.findById(input.deliveryId, { status: 1, attempts: 1 }).lean();
      if (logged?.status === 'succeeded') {
        const last = logged.attempts?.at(-1);
        return { attempt: last?.attempt ?? attempt, statusCode: last?.statusCode ?? null };
      }
      const fail = async (errorClass: DeliveryErrorClass, statusCode: number | null, durationMs: number) => {
        await logAttempt(input.deliveryId, { attempt, at: new Date(), statusCode, durationMs, errorClass }, 'pending');
        logger.warn('webhook attempt failed', {
          deliveryId: input.deliveryId,
          endpointId: endpoint._id,
          tenantId: endpoint.tenantId,
          attempt,
          statusCode,
          errorClass,
        });
      };
      if (endpoint.removedAt) {
        await fail('endpoint-gone', null, 0);
        throw ApplicationFailure.nonRetryable('the endpoint was removed', WEBHOOK_FAILURES.gone);
      }

      let target;
      try {
        target = await resolveWebhookTarget(endpoint.url, { allowLoopbackHttp: webhooks.allowLoopbackHttp }, resolveHost);
      } catch (err) {
        if (!(err instanceof WebhookTargetRefused)) throw err;
        await fail('refused-target', null, 0);
        // A name that does not resolve may come back; one that points inside is refused for good.
        if (err.reason === 'unresolvable') throw ApplicationFailure.retryable(err.message, WEBHOOK_FAILURES.attemptFailed);
        throw ApplicationFailure.nonRetryable(err.message, WEBHOOK_FAILURES.refusedTarget);
      }

      const body = JSON.stringify({
        id: event._id,
        type: event.type,
        tenantId: event.tenantId,
        createdAt: event.createdAt.toISOString(),
        data: event.data,
      } satisfies WebhookEvent);
      const timestamp = Math.floor(Date.now() / 1000);
      const outcome = await postToPinnedTarget(
        target,
        {
          [SIGNATURE_HEADER]: signatureHeader(signingSecrets(endpoint), timestamp, body),
          [EVENT_ID_HEADER]: event._id,
          [EVENT_TYPE_HEADER]: event.type,
          'user-agent': 'PatchProof-Webhooks/1',
        },
        body,
        { timeoutMs: webhooks.timeoutMs, maxResponseBytes: webhooks.maxResponseBytes },
      );
      if (outcome.errorClass) {
        await fail(outcome.errorClass, outcome.statusCode, outcome.durationMs);
        throw ApplicationFailure.retryable(
          `attempt ${attempt} failed: ${outcome.errorClass}${outcome.statusCode ? ` ${outcome.statusCode}` : ''}`,
          WEBHOOK_FAILURES.attemptFailed,
        );
      }
      await logAttempt(
        input.deliveryId,
        { attempt, at: new Date(), statusCode: outcome.statusCode, durationMs: outcome.durationMs, errorClass: null },
        'succeeded',
      );
      logger.info('webhook delivered', {
        deliveryId: input.deliveryId,
        endpointId: endpoint._id,
        tenantId: endpoint.tenantId,
        eventType: event.type,
        attempt,
        statusCode: outcome.statusCode,
        durationMs: outcome.durationMs,
      });
      return { attempt, statusCode: outcome.statusCode };
    },

    /** The attempts are over without a 2xx: the log says failed, and why. */
    async closeWebhookDelivery(input: {
      deliveryId: string;
      failure: string;
    }): Promise<{ attempts: number; lastStatusCode: number | null }> {
      await deliveries.updateOne({ _id: input.deliveryId, status: 'pending' }, { $set: { status: 'failed', updatedAt: new Date() } });
      const logged = await deliveries.findById(input.deliveryId, { attempts: 1 }).lean();
      logger.warn('webhook delivery failed', {
        deliveryId: input.deliveryId,
        failure: input.failure,
        attempts: logged?.attempts.length ?? 0,
      });
      return { attempts: logged?.attempts.length ?? 0, lastStatusCode: logged?.attempts.at(-1)?.statusCode ?? null };
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;

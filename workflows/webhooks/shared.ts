/**
 * Types of the webhook delivery workflow, shared by the workflow, its activities and its launchers. Dependency-free.
 * The input names the event and the endpoint only: the body is read from the stored event and the signing secret
 * from the endpoint inside the activity, so neither is in the workflow's history.
 */

export interface WebhookRetryPolicy {
  initialIntervalMs: number;
  maximumIntervalMs: number;
  /** How long attempts go on in all (24 h by default). */
  windowMs: number;
}

export interface WebhookDeliveryInput {
  eventId: string;
  endpointId: string;
  tenantId: string;
  /** A manual redelivery names the delivery it repeats. */
  redeliveryOf: string | null;
  retry: WebhookRetryPolicy;
}

export interface WebhookAttemptResult {
  attempt: number;
  statusCode: number | null;
}

export interface WebhookDeliveryResult {
  status: 'succeeded' | 'failed';
  /** Attempts made (the activity's attempt count); 0 when none could be made. */
  attempts: number;
  statusCode: number | null;
  /** The failure type when it failed: attempts exhausted, endpoint removed or its URL refused. */
  failure: string | null;
}

/** Failure types of the delivery activities. */
export const WEBHOOK_FAILURES = {
  /** One attempt failed (no answer, or not 2xx): retried with backoff. */
  attemptFailed: 'WebhookAttemptFailed',
  /** The endpoint was removed, or the event is unknown: nothing to send. */
  gone: 'WebhookEndpointGone',
  /** The URL now resolves to an address the SSRF guard refuses. */
  refusedTarget: 'WebhookTargetRefused',
} as const;

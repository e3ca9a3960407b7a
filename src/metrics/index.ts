import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The one module that owns every metric name the product emits. Dashboards and alert rules may query only names
 * defined here (or the Temporal SDK's `temporal_*` metrics); a test checks that.
 */
export const METRIC_PREFIX = 'patchproof_';

export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  dependencyUp: Gauge<'dependency'>;
  workflowStarts: Counter<'workflow_type' | 'outcome'>;
  poolOutputs: Gauge<'status'>;
  poolSatoshis: Gauge<'status'>;
  poolOperationFailures: Counter<'operation' | 'reason'>;
  broadcastRejections: Counter<'reason'>;
  /** deploy_sha comes from the registry's default labels. */
  svdEvents: Counter<'event_type' | 'kid'>;
  svdChallengeAge: Histogram<'kid'>;
  ownerLogins: Counter<'method' | 'outcome'>;
  emailDeliveries: Counter<'kind' | 'outcome'>;
}

/** Creates a registry for one process, labelled with its service name and deploy SHA. */
export function createMetrics(options: { service: string; deploySha: string }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service, deploy_sha: options.deploySha });
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  return {
    registry,
    httpRequestDuration: new Histogram({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: 'HTTP request duration by route template, method and status code.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    dependencyUp: new Gauge({
      name: `${METRIC_PREFIX}dependency_up`,
      help: '1 when the last check of a dependency (mongo, redis, temporal) succeeded, else 0.',
      labelNames: ['dependency'],
      registers: [registry],
    }),
    workflowStarts: new Counter({
      name: `${METRIC_PREFIX}workflow_starts_total`,
      help: 'Workflow starts requested through the API, by workflow type and outcome (started, already_started, failed).',
      labelNames: ['workflow_type', 'outcome'],
      registers: [registry],
    }),
    poolOutputs: new Gauge({
      name: `${METRIC_PREFIX}utxo_pool_outputs`,
      help: 'UTXO pool outputs by status (available, reserved, spent), as of the last sync, spend or health read.',
      labelNames: ['status'],
      registers: [registry],
    }),
    poolSatoshis: new Gauge({
      name: `${METRIC_PREFIX}utxo_pool_satoshis`,
      help: 'Satoshis held by UTXO pool outputs, by status.',
      labelNames: ['status'],
      registers: [registry],
    }),
    poolOperationFailures: new Counter({
      name: `${METRIC_PREFIX}utxo_pool_operation_failures_total`,
      help: 'Pool operations that failed permanently, by operation (top-up, sweep) and reason (insufficient_funds, …).',
      labelNames: ['operation', 'reason'],
      registers: [registry],
    }),
    broadcastRejections: new Counter({
      name: `${METRIC_PREFIX}broadcast_rejections_total`,
      help: 'Broadcasts the node rejected, by reason (missing_inputs, mempool_conflict, rejected, no_verdict).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    svdEvents: new Counter({
      name: `${METRIC_PREFIX}svd_events_total`,
      help: 'SVD events by type (begin, complete, replayed, expired, bad_challenge, malleable_reject, invalid, register, replace, revoke, refused) and JWT kid.',
      labelNames: ['event_type', 'kid'],
      registers: [registry],
    }),
    svdChallengeAge: new Histogram({
      name: `${METRIC_PREFIX}svd_challenge_age_seconds`,
      help: 'Age of an SVD challenge when a login completes with it.',
      labelNames: ['kid'],
      buckets: [1, 5, 15, 30, 60, 120, 180, 300],
      registers: [registry],
    }),
    ownerLogins: new Counter({
      name: `${METRIC_PREFIX}owner_logins_total`,
      help: 'Owner logins by method (svd, email) and outcome (success, failure).',
      labelNames: ['method', 'outcome'],
      registers: [registry],
    }),
    emailDeliveries: new Counter({
      name: `${METRIC_PREFIX}email_deliveries_total`,
      help: 'Email delivery attempts by kind and outcome (sent, transient_failure, permanent_failure).',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
  };
}

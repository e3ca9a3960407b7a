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
  poolTargetOutputs: Gauge<string>;
  poolOperationFailures: Counter<'operation' | 'reason'>;
  broadcastRejections: Counter<'reason'>;
  /** deploy_sha comes from the registry's default labels. */
  svdEvents: Counter<'event_type' | 'kid'>;
  svdChallengeAge: Histogram<'kid'>;
  /** Where an interactive request's time goes: SVD login steps and the rate limiters' Redis calls. */
  requestStepDuration: Histogram<'step'>;
  ownerLogins: Counter<'method' | 'outcome'>;
  emailDeliveries: Counter<'kind' | 'outcome'>;
  registrations: Counter<'outcome'>;
  /** NFC tag taps by outcome (authentic, replayed, invalid-mac, unknown-tag). */
  taps: Counter<'outcome'>;
  transfers: Counter<'outcome'>;
  anchorBatchSize: Histogram<string>;
  anchorFeePerRecord: Histogram<string>;
  anchorConfirmationLag: Histogram<string>;
  broadcasts: Counter<'outcome'>;
  kmsRequests: Counter<'operation' | 'outcome'>;
  kmsRequestDuration: Histogram<'operation'>;
  wocRequests: Counter<'operation' | 'outcome'>;
  chainRequestsByCaller: Counter<'caller' | 'operation'>;
  wocRequestDuration: Histogram<'operation'>;
  connectionUp: Gauge<'dependency'>;
  connectionErrors: Counter<'dependency'>;
  circuitOpen: Gauge<'dependency'>;
  circuitOpens: Counter<'dependency'>;
  svdChallengeTtl: Gauge<string>;
  scheduleMissedActions: Gauge<'schedule_id'>;
  scheduleLastActionTime: Gauge<'schedule_id'>;
  scheduleNextActionTime: Gauge<'schedule_id'>;
}

/** Label values known in advance: their series start at 0, so rates and ratios have data before the first event. */
export const KNOWN_LABELS = {
  registrationOutcomes: ['anchored', 'failed'],
  tapOutcomes: ['authentic', 'replayed', 'invalid-mac', 'unknown-tag'],
  transferOutcomes: ['completed', 'refused', 'failed'],
  broadcastOutcomes: ['success', 'missing_inputs', 'mempool_conflict', 'rejected', 'retryable', 'other'],
  broadcastRejectionReasons: ['missing_inputs', 'mempool_conflict', 'rejected', 'retryable', 'other'],
  kmsOperations: ['sign', 'public_key', 'svd_derive_secret', 'disable_key'],
  wocOperations: [
    'list_unspent',
    'get_tx',
    'get_raw_tx',
    'get_tx_statuses',
    'broadcast',
    'get_chain_info',
    'get_merkle_proof',
    'get_block_header',
    'get_output_spend',
  ],
  connections: ['mongo', 'redis'],
  ownerLoginMethods: ['svd', 'email'],
  svdEventTypes: ['begin', 'complete', 'replayed', 'expired', 'bad_challenge', 'malleable_reject', 'invalid'],
  poolFailures: [
    { operation: 'top-up', reason: 'insufficient_funds' },
    { operation: 'anchor', reason: 'insufficient_funds' },
  ],
} as const;

/** Creates a registry for one process, labelled with its service name and deploy SHA. */
export function createMetrics(options: { service: string; deploySha: string }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service, deploy_sha: options.deploySha });
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  const metrics: Metrics = {
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
    poolTargetOutputs: new Gauge({
      name: `${METRIC_PREFIX}utxo_pool_target_outputs`,
      help: 'Spendable outputs a top-up aims for (UTXO_MIN_POOL or its stored override), as of the last pool read.',
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
    requestStepDuration: new Histogram({
      name: `${METRIC_PREFIX}request_step_duration_seconds`,
      help: 'Time spent in one step of an interactive request: SVD login steps (svd_*) and rate-limiter store calls (rate_limit).',
      labelNames: ['step'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
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
    registrations: new Counter({
      name: `${METRIC_PREFIX}registrations_total`,
      help: 'Registrations that reached a final state, by outcome (anchored, failed).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    taps: new Counter({
      name: `${METRIC_PREFIX}tap_total`,
      help: 'NFC tag taps (GET /t) by outcome: authentic, replayed (a counter already seen: a copied URL), invalid-mac (forged or cloned tag), unknown-tag.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    transfers: new Counter({
      name: `${METRIC_PREFIX}transfers_total`,
      help: 'Ownership transfers that reached a final state, by outcome (completed, refused, failed).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    anchorBatchSize: new Histogram({
      name: `${METRIC_PREFIX}anchor_batch_size`,
      help: 'Records committed to by one anchor transaction (the Merkle tree leaves), per anchor planned.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    anchorFeePerRecord: new Histogram({
      name: `${METRIC_PREFIX}anchor_fee_per_record_satoshis`,
      help: 'Mining fee of an anchor transaction divided by the records it anchors, in satoshis.',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
      registers: [registry],
    }),
    anchorConfirmationLag: new Histogram({
      name: `${METRIC_PREFIX}anchor_confirmation_lag_seconds`,
      help: 'Time from an anchor broadcast to the confirmations the anchor waits for.',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
      registers: [registry],
    }),
    broadcasts: new Counter({
      name: `${METRIC_PREFIX}broadcasts_total`,
      help: 'Transaction broadcasts by result (success, missing_inputs, mempool_conflict, rejected, retryable, other).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    kmsRequests: new Counter({
      name: `${METRIC_PREFIX}kms_requests_total`,
      help: 'KMS calls (retries included) by operation and outcome (success or the KmsError kind).',
      labelNames: ['operation', 'outcome'],
      registers: [registry],
    }),
    kmsRequestDuration: new Histogram({
      name: `${METRIC_PREFIX}kms_request_duration_seconds`,
      help: 'KMS call duration by operation, retries and backoff included.',
      labelNames: ['operation'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    wocRequests: new Counter({
      name: `${METRIC_PREFIX}woc_requests_total`,
      help: 'WhatsOnChain calls by operation and outcome (success or the WocError kind).',
      labelNames: ['operation', 'outcome'],
      registers: [registry],
    }),
    chainRequestsByCaller: new Counter({
      name: `${METRIC_PREFIX}chain_requests_total`,
      help: 'Chain-service (WhatsOnChain) calls made on behalf of a caller, e.g. verify: 0 while verification reads local chain state.',
      labelNames: ['caller', 'operation'],
      registers: [registry],
    }),
    wocRequestDuration: new Histogram({
      name: `${METRIC_PREFIX}woc_request_duration_seconds`,
      help: 'WhatsOnChain call duration by operation, rate-limiter waits and retries included.',
      labelNames: ['operation'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    connectionUp: new Gauge({
      name: `${METRIC_PREFIX}connection_up`,
      help: 'State of the long-lived connection to a dependency (mongo, redis) from its driver events: 1 connected, 0 not.',
      labelNames: ['dependency'],
      registers: [registry],
    }),
    connectionErrors: new Counter({
      name: `${METRIC_PREFIX}connection_errors_total`,
      help: 'Connection errors and disconnects reported by a driver (mongo, redis).',
      labelNames: ['dependency'],
      registers: [registry],
    }),
    circuitOpen: new Gauge({
      name: `${METRIC_PREFIX}circuit_open`,
      help: "1 while the API's circuit to a dependency (mongo, redis, temporal) is open or probing, 0 when closed.",
      labelNames: ['dependency'],
      registers: [registry],
    }),
    circuitOpens: new Counter({
      name: `${METRIC_PREFIX}circuit_opens_total`,
      help: "Times the API's circuit to a dependency opened after consecutive stalls or connection failures.",
      labelNames: ['dependency'],
      registers: [registry],
    }),
    svdChallengeTtl: new Gauge({
      name: `${METRIC_PREFIX}svd_challenge_ttl_seconds`,
      help: 'Configured lifetime of an SVD challenge (SVD_CHALLENGE_TTL_SEC): the expiry window challenge ages are compared with.',
      registers: [registry],
    }),
    scheduleMissedActions: new Gauge({
      name: `${METRIC_PREFIX}schedule_missed_actions`,
      help: 'Actions a Temporal schedule skipped because they missed the catch-up window, as the server counts them.',
      labelNames: ['schedule_id'],
      registers: [registry],
    }),
    scheduleLastActionTime: new Gauge({
      name: `${METRIC_PREFIX}schedule_last_action_timestamp_seconds`,
      help: 'Unix time at which a Temporal schedule last started its workflow (0 when it never has).',
      labelNames: ['schedule_id'],
      registers: [registry],
    }),
    scheduleNextActionTime: new Gauge({
      name: `${METRIC_PREFIX}schedule_next_action_timestamp_seconds`,
      help: "Unix time of a Temporal schedule's next planned action (absent while paused or finished).",
      labelNames: ['schedule_id'],
      registers: [registry],
    }),
  };
  initialiseKnownSeries(metrics);
  return metrics;
}

/** Starts the series of known label values at 0 (prom-client's inc by 0 creates a series without counting). */
function initialiseKnownSeries(metrics: Metrics): void {
  for (const outcome of KNOWN_LABELS.registrationOutcomes) metrics.registrations.inc({ outcome }, 0);
  for (const outcome of KNOWN_LABELS.transferOutcomes) metrics.transfers.inc({ outcome }, 0);
  for (const outcome of KNOWN_LABELS.tapOutcomes) metrics.taps.inc({ outcome }, 0);
  for (const outcome of KNOWN_LABELS.broadcastOutcomes) metrics.broadcasts.inc({ outcome }, 0);
  for (const reason of KNOWN_LABELS.broadcastRejectionReasons) metrics.broadcastRejections.inc({ reason }, 0);
  for (const operation of KNOWN_LABELS.kmsOperations) metrics.kmsRequests.inc({ operation, outcome: 'success' }, 0);
  for (const operation of KNOWN_LABELS.wocOperations) metrics.wocRequests.inc({ operation, outcome: 'success' }, 0);
  // Verification's count starts at a visible 0: the series that should stay flat.
  metrics.chainRequestsByCaller.inc({ caller: 'verify', operation: 'get_tx' }, 0);
  for (const dependency of KNOWN_LABELS.connections) metrics.connectionErrors.inc({ dependency }, 0);
  for (const method of KNOWN_LABELS.ownerLoginMethods) {
    for (const outcome of ['success', 'failure']) metrics.ownerLogins.inc({ method, outcome }, 0);
  }
  for (const labels of KNOWN_LABELS.poolFailures) metrics.poolOperationFailures.inc(labels, 0);
}

/** SVD series are per JWT kid, known once the keyring is loaded: the SVD service calls this with its active kid. */
export function initialiseSvdSeries(metrics: Metrics, kid: string, challengeTtlSeconds: number): void {
  for (const eventType of KNOWN_LABELS.svdEventTypes) metrics.svdEvents.inc({ event_type: eventType, kid }, 0);
  metrics.svdChallengeTtl.set(challengeTtlSeconds);
}

/** What a client of an outside service (KMS, WhatsOnChain) reports after each call. */
export type ExternalCallObserver = (call: { operation: string; outcome: string; seconds: number }) => void;

export function kmsCallObserver(metrics: Metrics): ExternalCallObserver {
  return ({ operation, outcome, seconds }) => {
    metrics.kmsRequests.inc({ operation, outcome });
    metrics.kmsRequestDuration.observe({ operation }, seconds);
  };
}

export function wocCallObserver(metrics: Metrics): ExternalCallObserver {
  return ({ operation, outcome, seconds }) => {
    metrics.wocRequests.inc({ operation, outcome });
    metrics.wocRequestDuration.observe({ operation }, seconds);
  };
}

/** Anything with Node's `on` (mongoose Connection, ioredis): the gauge follows the driver's own events. */
interface EventSource {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** Follows a Mongo connection (mongoose) from its events; call once, after connecting. */
export function watchMongoConnection(metrics: Metrics, connection: EventSource & { readyState: number }): void {
  const up = (value: number) => metrics.connectionUp.set({ dependency: 'mongo' }, value);
  up(connection.readyState === 1 ? 1 : 0);
  connection.on('connected', () => up(1));
  connection.on('reconnected', () => up(1));
  connection.on('disconnected', () => {
    up(0);
    metrics.connectionErrors.inc({ dependency: 'mongo' });
  });
  connection.on('error', () => metrics.connectionErrors.inc({ dependency: 'mongo' }));
}

/** Follows a Redis connection (ioredis) from its events; call once, after connecting. */
export function watchRedisConnection(metrics: Metrics, client: EventSource & { status: string }): void {
  const up = (value: number) => metrics.connectionUp.set({ dependency: 'redis' }, value);
  up(client.status === 'ready' ? 1 : 0);
  client.on('ready', () => up(1));
  client.on('close', () => up(0));
  client.on('end', () => up(0));
  client.on('error', () => metrics.connectionErrors.inc({ dependency: 'redis' }));
}

/** An anchor was planned over `records` records for `feeSatoshis`: batch size and fee per record. */
export function recordAnchorPlanned(metrics: Metrics | undefined, anchor: { records: number; feeSatoshis: number }): void {
  if (!metrics || anchor.records < 1) return;
  metrics.anchorBatchSize.observe(anchor.records);
  metrics.anchorFeePerRecord.observe(anchor.feeSatoshis / anchor.records);
}

export function recordRegistrationOutcome(
  metrics: Metrics | undefined,
  outcome: (typeof KNOWN_LABELS.registrationOutcomes)[number],
  count = 1,
): void {
  if (count > 0) metrics?.registrations.inc({ outcome }, count);
}

export function recordTransferOutcome(metrics: Metrics | undefined, outcome: (typeof KNOWN_LABELS.transferOutcomes)[number]): void {
  metrics?.transfers.inc({ outcome });
}

/** Seconds from an anchor's broadcast until it had the confirmations it waits for. */
export function recordAnchorConfirmed(metrics: Metrics | undefined, broadcastAt: Date, confirmedAt: Date = new Date()): void {
  metrics?.anchorConfirmationLag.observe(Math.max(0, (confirmedAt.getTime() - broadcastAt.getTime()) / 1000));
}

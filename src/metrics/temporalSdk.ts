/**
 * The Temporal SDK metrics (sdk-core, `temporal_` prefix, served by the main worker's Runtime Prometheus exporter)
 * that dashboards and alert rules query. The exporter's defaults apply: counters without a `_total` suffix and
 * durations in milliseconds. The integration test checks each name against the real worker's exporter output.
 */
export const TEMPORAL_SDK_METRICS = [
  'temporal_workflow_completed',
  'temporal_workflow_failed',
  'temporal_workflow_endtoend_latency',
  'temporal_workflow_task_schedule_to_start_latency',
  'temporal_activity_execution_failed',
  'temporal_activity_execution_latency',
  'temporal_activity_schedule_to_start_latency',
  'temporal_worker_task_slots_available',
  'temporal_worker_task_slots_used',
] as const;

/** Series Prometheus itself adds to every scrape; rules may query them (e.g. `up` for a process that is down). */
export const PROMETHEUS_SERIES = ['up'] as const;

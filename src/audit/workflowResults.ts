import { isGrpcServiceError, type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';

/** How a workflow ended, as its close event says; `result` is the decoded return value of a completed one. */
export type WorkflowOutcome =
  | { state: 'missing' }
  | { state: 'open' }
  | { state: 'completed'; result: unknown }
  | { state: 'failed' | 'terminated' | 'timed-out' | 'cancelled' };

/** gRPC status NOT_FOUND: the workflow id has no execution (never started, deleted or past retention). */
const GRPC_NOT_FOUND = 5;

/** Continue-as-new runs followed at most; a bulk batch continues as new a handful of times. */
const MAX_RUNS = 100;

/**
 * The outcome of a workflow from its close event alone: one GetWorkflowExecutionHistory request with the close-event
 * filter (a few hundred bytes, whatever the history's length), following continue-as-new to the last run. An open
 * workflow answers at once (no waiting for it to close). Errors other than "not found" propagate: Temporal could not
 * be asked, which is not a finding.
 */
export async function workflowOutcome(client: Client, workflowId: string): Promise<WorkflowOutcome> {
  let runId: string | undefined;
  for (let run = 0; run < MAX_RUNS; run++) {
    let response: temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse;
    try {
      response = await client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId, ...(runId && { runId }) },
        historyEventFilterType: temporal.api.enums.v1.HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
        waitNewEvent: false,
        skipArchival: true,
      });
    } catch (err) {
      if (isGrpcServiceError(err) && (err.code as number) === GRPC_NOT_FOUND) return { state: 'missing' };
      throw err;
    }
    const event = response.history?.events?.[0];
    if (!event) return { state: 'open' };
    const completed = event.workflowExecutionCompletedEventAttributes;
    const next =
      completed?.newExecutionRunId ||
      event.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ||
      event.workflowExecutionFailedEventAttributes?.newExecutionRunId ||
      event.workflowExecutionTimedOutEventAttributes?.newExecutionRunId;
    if (next) {
      runId = next;
      continue;
    }
    if (completed) {
      const result = await decodeFromPayloadsAtIndex(client.options.loadedDataConverter, 0, completed.result?.payloads);
      return { state: 'completed', result };
    }
    if (event.workflowExecutionFailedEventAttributes) return { state: 'failed' };
    if (event.workflowExecutionTerminatedEventAttributes) return { state: 'terminated' };
    if (event.workflowExecutionTimedOutEventAttributes) return { state: 'timed-out' };
    return { state: 'cancelled' };
  }
  return { state: 'open' };
}

/**
 * The fields of a workflow's result that differ from what the database holds, as `name: result ≠ database`; empty
 * when they agree. A result that is not an object differs in every field.
 */
export function resultDifferences(result: unknown, expected: Record<string, string | number>): string[] {
  const fields = typeof result === 'object' && result !== null ? (result as Record<string, unknown>) : {};
  return Object.entries(expected)
    .filter(([name, value]) => fields[name] !== value)
    .map(([name, value]) => `${name}: workflow ${JSON.stringify(fields[name] ?? null)} ≠ database ${JSON.stringify(value)}`);
}

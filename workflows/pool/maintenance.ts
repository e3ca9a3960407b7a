import {
  ApplicationFailure,
  ParentClosePolicy,
  proxyActivities,
  startChild,
  upsertSearchAttributes,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { PoolActivities } from '../../activities/pool/poolActivities';
import { withFailureStatus } from '../shared/failures';
import { WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import type { ReconcileReport, ScheduledPoolOperation, ScheduledPoolRunReport, SyncInput, SyncReport } from './shared';
import { utxoSweepWorkflow } from './sweep';
import { utxoTopUpWorkflow } from './topUp';

const pool = proxyActivities<PoolActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
});

/** Reservations the reconciler looks at per run; the oldest first, so a backlog drains over successive runs. */
const RECONCILE_BATCH = 500;

/** Runbook "Frequent Missing inputs": brings the pool in line with the chain. Id `utxo-sync-<fundingKeyId>`. */
export function utxoSyncWorkflow(_input: SyncInput): Promise<SyncReport> {
  return withFailureStatus(async () => {
    upsertSearchAttributes([
      { key: WORKFLOW_KIND, value: 'utxo-sync' },
      { key: WORKFLOW_STATUS, value: 'running' },
    ]);
    const accounts = await pool.resolvePoolAccounts({ verify: false });
    const report = await pool.syncPool(accounts);
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'completed' }]);
    return report;
  });
}

/**
 * Releases reservations whose workflows have closed, after checking the chain; never by age: unlocking an old
 * reservation whose spend is still on its way would hand the same output out twice.
 */
export function utxoReconcileWorkflow(): Promise<ReconcileReport> {
  return withFailureStatus(async () => {
    upsertSearchAttributes([
      { key: WORKFLOW_KIND, value: 'utxo-reconcile' },
      { key: WORKFLOW_STATUS, value: 'running' },
    ]);
    const report = await pool.reconcileReservations({ limit: RECONCILE_BATCH });
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'completed' }]);
    return report;
  });
}

/**
 * What a schedule starts. Schedules suffix their workflow ids with the tick time, so the run itself is started
 * here as a child under the operation's fixed id: a manual run holding that id makes this tick a no-op instead of
 * a second, concurrent operation. The child is abandoned, not cancelled, if this workflow ends first.
 */
export async function scheduledPoolOperationWorkflow(request: ScheduledPoolOperation): Promise<ScheduledPoolRunReport> {
  upsertSearchAttributes([{ key: WORKFLOW_KIND, value: `scheduled-${request.operation}` }]);
  const options = {
    workflowId: request.workflowId,
    parentClosePolicy: ParentClosePolicy.ABANDON,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
  };
  try {
    const child =
      request.operation === 'top-up'
        ? await startChild(utxoTopUpWorkflow, { ...options, args: [request.input] })
        : request.operation === 'sweep'
          ? await startChild(utxoSweepWorkflow, { ...options, args: [request.input] })
          : await startChild(utxoReconcileWorkflow, options);
    const result = await child.result();
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'completed' }]);
    return { operation: request.operation, workflowId: request.workflowId, outcome: 'completed', runId: child.firstExecutionRunId, result };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'already_running' }]);
      return { operation: request.operation, workflowId: request.workflowId, outcome: 'already_running' };
    }
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'failed' }]);
    if (err instanceof ApplicationFailure) throw err;
    throw ApplicationFailure.create({
      message: `${request.operation} run ${request.workflowId} failed`,
      cause: err as Error,
      nonRetryable: true,
    });
  }
}

import { WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { transferProgressQuery, type TransferInput, type TransferProgress } from '../../workflows/transfer/shared';
import type { transferWorkflow } from '../../workflows/transfer/transfer';
import { PATCH_UID, WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { transferWorkflowId } from './ids';
import { transferModel, type TransferStatus } from './models';

/** Starts a transfer of the patch's current head; a second start for the same head reports the first. */
export function startTransfer(client: Client, input: TransferInput, starts?: StartCounter): Promise<LaunchResult> {
  return startOnce<typeof transferWorkflow>(
    client,
    'transferWorkflow',
    {
      workflowId: transferWorkflowId(input.uid, input.headTxid),
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      taskQueue: TASK_QUEUES.main,
      args: [input],
      typedSearchAttributes: [
        { key: PATCH_UID, value: input.uid },
        { key: WORKFLOW_KIND, value: 'transfer' },
      ],
    },
    starts,
  );
}

export interface TransferState {
  transferId: string;
  uid: string;
  state: 'running' | 'completed' | 'failed';
  status: TransferStatus | 'starting';
  seq?: number;
  from?: string;
  to?: string;
  progress?: TransferProgress;
  txid?: string;
  recordHash?: string;
  lastError?: string;
}

/** A transfer's state: the live query while its workflow runs, the stored record after (or past retention). */
export async function getTransferStatus(client: Client, mongo: Connection, transferId: string): Promise<TransferState | null> {
  const transfer = await transferModel(mongo).findById(transferId).lean();
  let running = false;
  let progress: TransferProgress | undefined;
  let uid = transfer?.uid;
  try {
    const handle = client.workflow.getHandle(transferId);
    const description = await handle.describe();
    running = description.status.name === 'RUNNING';
    uid ??= description.typedSearchAttributes.get(PATCH_UID);
    if (running) progress = await handle.query(transferProgressQuery).catch(() => undefined);
    if (!transfer && !running) {
      // Closed before it wrote a record (the head had moved): the failure is the workflow's own.
      const failure = await handle.result().then(
        () => undefined,
        (err: Error) => (err.cause instanceof Error ? err.cause.message : err.message),
      );
      return { transferId, uid: uid ?? '', state: 'failed', status: 'failed', ...(failure && { lastError: failure }) };
    }
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    if (!transfer) return null;
  }
  const status = transfer?.status ?? 'starting';
  const txid = transfer?.anchor?.txid ?? progress?.txid;
  return {
    transferId,
    uid: uid ?? '',
    state: running ? 'running' : status === 'failed' ? 'failed' : status === 'anchored' ? 'completed' : 'running',
    status,
    ...(transfer && { seq: transfer.seq, from: String(transfer.record.from), to: String(transfer.record.to) }),
    ...(progress && { progress }),
    ...(txid && { txid }),
    ...(transfer?.recordHash && { recordHash: transfer.recordHash }),
    ...(transfer?.lastError && { lastError: transfer.lastError }),
  };
}

import { WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { registrationProgressQuery, type RegistrationInput, type RegistrationProgress } from '../../workflows/registration/shared';
import type { registrationWorkflow } from '../../workflows/registration/registration';
import { PATCH_UID, TENANT_ID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { registrationWorkflowId } from './ids';
import { patchModel, type PatchStatus } from './models';
import { DEFAULT_TENANT_ID, tenantOf } from '../tenancy/apiKeys';

/** Starts the registration of a uid; a uid is registered at most once, so a second start reports the first. */
export function startRegistration(client: Client, input: RegistrationInput, starts?: StartCounter): Promise<LaunchResult> {
  const uid = input.request.product.uid_tag_id;
  return startOnce<typeof registrationWorkflow>(
    client,
    'registrationWorkflow',
    {
      workflowId: registrationWorkflowId(uid),
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      taskQueue: TASK_QUEUES.main,
      args: [input],
      typedSearchAttributes: [
        { key: PATCH_UID, value: uid },
        { key: WORKFLOW_KIND, value: 'registration' },
        // Set here rather than by the workflow: one history event fewer on every registration.
        { key: WORKFLOW_STATUS, value: 'pending' },
        { key: TENANT_ID, value: input.actor?.tenantId ?? DEFAULT_TENANT_ID },
      ],
      // The acting key, in the memo: the start event records it without a workflow event of its own.
      ...(input.actor && { memo: { actor: input.actor } }),
    },
    starts,
  );
}

export interface RegistrationStatus {
  registrationId: string;
  uid: string;
  /** The tenant that registered it: the record's, else the running workflow's search attribute. */
  tenantId: string;
  state: 'running' | 'completed' | 'failed';
  status: PatchStatus | 'starting';
  progress?: RegistrationProgress;
  txid?: string;
  recordHash?: string;
  lastError?: string;
}

/** A registration's state: the live query while its workflow runs, the stored record after (or past retention). */
export async function getRegistrationStatus(client: Client, mongo: Connection, uid: string): Promise<RegistrationStatus | null> {
  const registrationId = registrationWorkflowId(uid);
  const patch = await patchModel(mongo).findById(uid).lean();
  let running = false;
  let progress: RegistrationProgress | undefined;
  let tenantId = patch ? tenantOf(patch) : DEFAULT_TENANT_ID;
  try {
    const handle = client.workflow.getHandle(registrationId);
    const description = await handle.describe();
    running = description.status.name === 'RUNNING';
    if (!patch) tenantId = description.typedSearchAttributes.get(TENANT_ID) ?? DEFAULT_TENANT_ID;
    if (running) progress = await handle.query(registrationProgressQuery).catch(() => undefined);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    if (!patch) return null;
  }
  const status = patch?.status ?? 'starting';
  return {
    registrationId,
    uid,
    tenantId,
    state: running ? 'running' : status === 'failed' ? 'failed' : status === 'anchored' ? 'completed' : 'running',
    status,
    ...(progress && { progress }),
    ...((patch?.anchor?.txid ?? progress?.txid) && { txid: patch?.anchor?.txid ?? progress?.txid }),
    ...(patch?.recordHash && { recordHash: patch.recordHash }),
    ...(patch?.lastError && { lastError: patch.lastError }),
  };
}

import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { AppConfig } from '../config';
import type { issuerKeyRevocationWorkflow } from '../../workflows/issuerKeys/revocation';
import { REVOCATION_TIME_SKEW_MS, type IssuerKeyRevocationInput, type IssuerKeyRevocationReport } from '../../workflows/issuerKeys/shared';
import type { RotationTrigger } from '../../workflows/rotation/shared';
import { WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { latestRunStatus, type RotationStatus } from '../rotation/launch';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { issuerKeyRevocationWorkflowId } from './ids';

export interface IssuerKeyRevocationRequest {
  kid: string;
  reason: string;
  revokedAt?: string;
  requestedBy: string;
  trigger: RotationTrigger;
  force?: boolean;
}

/** Why a revocation time is refused (not a time, or in the future), or null. The API and the CLI both ask. */
export function revocationTimeProblem(revokedAt: string, now: number = Date.now()): string | null {
  const at = Date.parse(revokedAt);
  if (Number.isNaN(at)) return 'an ISO 8601 time, such as 2026-05-01T12:00:00Z';
  if (at > now + REVOCATION_TIME_SKEW_MS) return 'a time that has passed: the earliest the key may have been exposed';
  return null;
}

export function issuerKeyRevocationInput(config: AppConfig, request: IssuerKeyRevocationRequest): IssuerKeyRevocationInput {
  return {
    kid: request.kid,
    reason: request.reason,
    ...(request.revokedAt !== undefined && { revokedAt: new Date(request.revokedAt).toISOString() }),
    requestedBy: request.requestedBy,
    trigger: request.trigger,
    force: request.force ?? false,
    settingsCacheMs: config.rotation.cacheMs,
  };
}

/**
 * Starts the revocation of a key; `alreadyStarted` means one of the same key runs and this request attached to it.
 * The id is reused by later revocations of the key (to move its time earlier), never while one runs.
 */
export function startIssuerKeyRevocation(client: Client, input: IssuerKeyRevocationInput, starts?: StartCounter): Promise<LaunchResult> {
  return startOnce<typeof issuerKeyRevocationWorkflow>(
    client,
    'issuerKeyRevocationWorkflow',
    {
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      workflowId: issuerKeyRevocationWorkflowId(input.kid),
      taskQueue: TASK_QUEUES.main,
      args: [input],
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'issuer-key-revocation' }],
      // Who asked and why, readable in the Web UI's list and `temporal workflow describe` without opening the history.
      memo: { kid: input.kid, reason: input.reason, requestedBy: input.requestedBy, revokedAt: input.revokedAt ?? 'at start' },
    },
    starts,
  );
}

export type IssuerKeyRevocationStatus = RotationStatus<IssuerKeyRevocationReport>;

/** The latest revocation of a key: running, its report, or why it was refused (`failureType`). */
export function getIssuerKeyRevocationStatus(client: Client, kid: string): Promise<IssuerKeyRevocationStatus> {
  return latestRunStatus<IssuerKeyRevocationReport>(client, issuerKeyRevocationWorkflowId(kid));
}

/**
 * Starts a revocation (or attaches to the one running for the key) and waits up to `waitMs` for it to finish; the
 * status then says revoked, refused (with the failure type) or still running.
 */
export async function revokeIssuerKey(
  client: Client,
  input: IssuerKeyRevocationInput,
  options: { waitMs: number; starts?: StartCounter },
): Promise<{ started: LaunchResult; status: IssuerKeyRevocationStatus }> {
  const started = await startIssuerKeyRevocation(client, input, options.starts);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.workflow
      .getHandle(started.workflowId, started.runId)
      .result()
      .catch(() => undefined),
    new Promise((resolve) => (timer = setTimeout(resolve, options.waitMs))),
  ]).finally(() => clearTimeout(timer));
  return { started, status: await getIssuerKeyRevocationStatus(client, input.kid) };
}

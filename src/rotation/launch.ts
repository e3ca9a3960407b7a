import { WorkflowFailedError, WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { AppConfig } from '../config';
import { DomainError } from '../errors';
import type { jwtKeyRotationWorkflow } from '../../workflows/rotation/jwtRotation';
import type { kmsRotationWorkflow } from '../../workflows/rotation/kmsRotation';
import {
  approveRotationSignal,
  cancelRotationSignal,
  jwtRotationStatusQuery,
  kmsRotationStatusQuery,
  type JwtRotationInput,
  type JwtRotationStatus,
  type KmsRotationInput,
  type KmsRotationMemo,
  type KmsRotationStatus,
  type OperatorAction,
  type RotationTrigger,
} from '../../workflows/rotation/shared';
import { WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import { startOnce, type LaunchResult, type StartCounter } from '../temporal/launch';
import { JWT_ROTATION_WORKFLOW_ID, kmsRotationWorkflowId, type KmsKeyPurpose } from './ids';

// A rotation id is reused by later rotations of the same purpose, never while one runs: that is the lock.
const reusableWhenClosed = { workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE } as const;

export interface KmsRotationRequest {
  purpose: KmsKeyPurpose;
  newKeyIdentifier: string;
  requestedBy: string;
  /** The starting credential (API key id, `bootstrap`, or `cli:<user>`); an approval must come from another. */
  startedByKeyId: string;
  trigger: RotationTrigger;
  /** Overrides of the configured defaults. */
  autoApproveAfter?: string | null;
  gracePeriodDays?: number;
  disableOldKeyInKms?: boolean;
}

/** The workflow input: the request with the configuration's defaults filled in. */
export function kmsRotationInput(config: AppConfig, request: KmsRotationRequest): KmsRotationInput {
  return {
    purpose: request.purpose,
    newKeyIdentifier: request.newKeyIdentifier,
    requestedBy: request.requestedBy,
    startedByKeyId: request.startedByKeyId,
    trigger: request.trigger,
    autoApproveAfter: request.autoApproveAfter === undefined ? config.rotation.autoApproveAfter : request.autoApproveAfter,
    gracePeriodDays: request.gracePeriodDays ?? config.rotation.graceDays,
    disableOldKeyInKms: request.disableOldKeyInKms ?? config.rotation.disableOldKeyInKms,
    settingsCacheMs: config.rotation.cacheMs,
  };
}

/** Starts a KMS rotation; `alreadyStarted` means one of this purpose runs and nothing new started. */
export function startKmsRotation(client: Client, input: KmsRotationInput, starts?: StartCounter): Promise<LaunchResult> {
  return startOnce<typeof kmsRotationWorkflow>(
    client,
    'kmsRotationWorkflow',
    {
      ...reusableWhenClosed,
      workflowId: kmsRotationWorkflowId(input.purpose),
      taskQueue: TASK_QUEUES.main,
      args: [input],
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'kms-rotation' }],
      ...(input.startedByKeyId !== undefined && { memo: { startedByKeyId: input.startedByKeyId } satisfies KmsRotationMemo }),
    },
    starts,
  );
}

export function jwtRotationInput(
  config: AppConfig,
  request: { requestedBy: string; trigger: RotationTrigger; newKid?: string },
): JwtRotationInput {
  const jwt = config.ownerAuth.jwt;
  return {
    requestedBy: request.requestedBy,
    trigger: request.trigger,
    ...(request.newKid && { newKid: request.newKid }),
    tokenLifetimeSec: Math.max(jwt.svdSessionTtlSec, jwt.emailTokenTtlSec) + config.ownerAuth.svd.clockSkewSec,
    settingsCacheMs: config.rotation.cacheMs,
  };
}

export function startJwtRotation(client: Client, input: JwtRotationInput, starts?: StartCounter): Promise<LaunchResult> {
  return startOnce<typeof jwtKeyRotationWorkflow>(
    client,
    'jwtKeyRotationWorkflow',
    {
      ...reusableWhenClosed,
      workflowId: JWT_ROTATION_WORKFLOW_ID,
      taskQueue: TASK_QUEUES.main,
      args: [input],
      typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'jwt-rotation' }],
    },
    starts,
  );
}

/** The latest run of a workflow id: its live status while it runs, its result after, or why it failed. */
export type RotationStatus<S> =
  | { state: 'running'; workflowId: string; runId: string; status: S | null }
  | { state: 'completed'; workflowId: string; runId: string; status: S }
  | { state: 'failed'; workflowId: string; runId: string; reason: string; failureType?: string }
  | { state: 'not_found'; workflowId: string };

export async function latestRunStatus<S>(
  client: Client,
  workflowId: string,
  /** The live status of a running run (a query); without it a running run has none. */
  read?: (handle: ReturnType<Client['workflow']['getHandle']>) => Promise<S>,
): Promise<RotationStatus<S>> {
  const handle = client.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { state: 'not_found', workflowId } as const;
    throw err;
  }
  const ids = { workflowId, runId: description.runId };
  if (description.status.name === 'RUNNING') {
    // A run that has not processed its first task yet has no query handler.
    return { state: 'running', ...ids, status: read ? await read(handle).catch(() => null) : null } as const;
  }
  if (description.status.name === 'COMPLETED') return { state: 'completed', ...ids, status: (await handle.result()) as S } as const;
  try {
    await handle.result();
  } catch (err) {
    // An activity's refusal arrives wrapped ("Activity task failed"): report the refusal itself.
    let cause: Error | undefined = err instanceof WorkflowFailedError ? err.cause : undefined;
    while (cause && !(cause instanceof ApplicationFailure) && cause.cause instanceof Error) cause = cause.cause;
    const failureType = cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
    return { state: 'failed', ...ids, reason: cause?.message ?? (err as Error).message, ...(failureType && { failureType }) } as const;
  }
  return { state: 'failed', ...ids, reason: description.status.name.toLowerCase() } as const;
}

/** The latest rotation of a purpose: its live status while it runs, its report after, or why it failed. */
export function getKmsRotationStatus(client: Client, purpose: KmsKeyPurpose): Promise<RotationStatus<KmsRotationStatus>> {
  return latestRunStatus(client, kmsRotationWorkflowId(purpose), (handle) => handle.query(kmsRotationStatusQuery));
}

export function getJwtRotationStatus(client: Client): Promise<RotationStatus<JwtRotationStatus>> {
  return latestRunStatus(client, JWT_ROTATION_WORKFLOW_ID, (handle) => handle.query(jwtRotationStatusQuery));
}

/**
 * Sends an operator's approval or cancel to the running rotation of a purpose. Returns false when none runs. The
 * workflow decides whether it still applies (a cancel after the cutover is refused and listed in its status). An
 * approval from the credential that started the rotation is refused here (APPROVER_IS_STARTER) and never sent.
 */
export async function signalKmsRotation(
  client: Client,
  purpose: KmsKeyPurpose,
  action: 'approve' | 'cancel',
  by: OperatorAction & { keyId: string },
): Promise<boolean> {
  const handle = client.workflow.getHandle(kmsRotationWorkflowId(purpose));
  try {
    const description = await handle.describe();
    if (description.status.name !== 'RUNNING') return false;
    const startedByKeyId = (description.memo as Partial<KmsRotationMemo> | undefined)?.startedByKeyId;
    if (action === 'approve' && startedByKeyId !== undefined && startedByKeyId === by.keyId) {
      throw new DomainError(
        'APPROVER_IS_STARTER',
        `The credential that started the ${purpose} rotation cannot approve it; approve with another operator key.`,
        { startedByKeyId },
      );
    }
    await handle.signal(action === 'approve' ? approveRotationSignal : cancelRotationSignal, by);
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

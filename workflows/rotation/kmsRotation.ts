import {
  ApplicationFailure,
  condition,
  executeChild,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RotationActivities } from '../../activities/rotation/rotationActivities';
import { sweepWorkflowId } from '../../src/pool/ids';
import type { SweepReport } from '../pool/shared';
import type { utxoSweepWorkflow } from '../pool/sweep';
import { WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import {
  APPROVER_IS_STARTER_REASON,
  approveRotationSignal,
  cancelRotationSignal,
  kmsRotationStatusQuery,
  type KmsRotationInput,
  type KmsRotationReport,
  type KmsRotationStatus,
  type OperatorAction,
} from './shared';

// Preflight talks to the KMS: transport trouble is retried a few times, a refused key fails the rotation at once.
const preflight = proxyActivities<RotationActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});

// Store writes are idempotent and a half-done rotation must finish, so they are retried for as long as it takes.
const store = proxyActivities<RotationActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Sweeps a funding rotation runs at most at one point, each taking up to SWEEP_MAX_INPUTS outputs. */
const MAX_SWEEPS = 10;
const DAY_MS = 24 * 3600 * 1000;

/**
 * A KMS key rotation, as the runbook's "KMS Key Rotation" steps: preflight the new key, stage it so verifiers
 * accept both, wait for an operator's approval (or approve itself after a delay), cut over in the key settings,
 * move the funds (funding key), keep the old key verifying for the grace period, then retire it. Cancel before the
 * cutover withdraws the staged key and leaves the old one active. Id `kms-rotation-<purpose>`: one per purpose.
 */
export async function kmsRotationWorkflow(input: KmsRotationInput): Promise<KmsRotationReport> {
  const info = workflowInfo();
  const rotationId = `${info.workflowId}@${info.runId}`;
  const status: KmsRotationStatus = {
    purpose: input.purpose,
    step: 'preflight',
    requestedBy: input.requestedBy,
    ...(input.startedByKeyId !== undefined && { startedByKeyId: input.startedByKeyId }),
    startedAt: new Date().toISOString(),
    sweeps: [],
    refused: [],
  };
  // Every process re-reads the key settings within settingsCacheMs; waiting twice that (plus a margin) after each
  // switch guarantees no process signs with a key that another process does not accept yet.
  const propagationMs = input.settingsCacheMs * 2 + 1_000;
  let approval: (OperatorAction & { at: string }) | undefined;
  let cancellation: (OperatorAction & { at: string }) | undefined;
  const beforeCutover = () => ['preflight', 'staging', 'awaiting_approval'].includes(status.step);

  setHandler(kmsRotationStatusQuery, () => status);
  setHandler(approveRotationSignal, (action) => {
    const at = new Date().toISOString();
    if (!beforeCutover() || cancellation) {
      status.refused.push({ signal: 'approve', by: action.by, at, reason: `the rotation is ${status.step}` });
      return;
    }
    // Four eyes: the credential that started the rotation cannot approve it (the API and CLI check first; this holds
    // for a signal sent any other way).
    if (input.startedByKeyId !== undefined && (action.keyId === undefined || action.keyId === input.startedByKeyId)) {
      status.refused.push({ signal: 'approve', by: action.by, at, reason: APPROVER_IS_STARTER_REASON });
      return;
    }
    approval ??= { ...action, at };
  });
  setHandler(cancelRotationSignal, (action) => {
    const at = new Date().toISOString();
    if (!beforeCutover()) {
      status.refused.push({ signal: 'cancel', by: action.by, at, reason: `the cutover has happened (${status.step})` });
      return;
    }
    cancellation ??= { ...action, at };
  });
  const setStatus = (value: string) => upsertSearchAttributes([{ key: WORKFLOW_STATUS, value }]);
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'kms-rotation' },
    { key: WORKFLOW_STATUS, value: 'preflight' },
  ]);

  const { oldKey, newKey } = await preflight.preflightRotationKey({ purpose: input.purpose, newKeyIdentifier: input.newKeyIdentifier });
  status.oldKey = oldKey;
  status.newKey = newKey;

  status.step = 'staging';
  await store.stageRotationKey({ purpose: input.purpose, oldKey, newKey, rotationId });
  status.stagedAt = new Date().toISOString();
  // Every process accepts the new key before any process may sign with it.
  await condition(() => cancellation !== undefined, propagationMs);

  status.step = 'awaiting_approval';
  setStatus('awaiting_approval');
  if (input.autoApproveAfter !== null && !approval && !cancellation) {
    const delayMs = durationMs(input.autoApproveAfter);
    status.autoApproveAt = new Date(Date.now() + delayMs).toISOString();
    const decided = await condition(() => approval !== undefined || cancellation !== undefined, delayMs);
    if (!decided) approval = { by: 'auto-approval', at: new Date().toISOString() };
  } else {
    await condition(() => approval !== undefined || cancellation !== undefined);
  }

  if (cancellation) {
    status.step = 'cancelling';
    status.cancelledBy = cancellation.by;
    status.cancelledAt = cancellation.at;
    await store.unstageRotationKey({ purpose: input.purpose, newKey, rotationId });
    status.step = 'cancelled';
    setStatus('cancelled');
    return { ...status, outcome: 'cancelled' };
  }
  status.approvedBy = approval!.by;
  if (approval!.keyId !== undefined) status.approvedByKeyId = approval!.keyId;
  status.approvedAt = approval!.at;

  status.step = 'cutover';
  setStatus('cutover');
  await store.cutOverRotationKey({ purpose: input.purpose, oldKey, newKey, rotationId });
  status.cutoverAt = new Date().toISOString();
  // Until every process has seen the cutover some may still sign (or take change) with the old key.
  await sleep(propagationMs);

  if (input.purpose === 'funding') {
    status.step = 'moving_funds';
    setStatus('moving_funds');
    await moveFunds(input, oldKey.address!, oldKey.keyIdentifier, newKey.address!, status.sweeps);
  }

  status.step = 'grace_period';
  setStatus('grace_period');
  const graceMs = Math.round(input.gracePeriodDays * DAY_MS);
  status.graceEndsAt = new Date(Date.now() + graceMs).toISOString();
  await sleep(graceMs);

  status.step = 'retiring';
  setStatus('retiring');
  if (input.purpose === 'funding') {
    // Work that planned before the cutover may have paid change to the old address since: one last sweep.
    await moveFunds(input, oldKey.address!, oldKey.keyIdentifier, newKey.address!, status.sweeps);
  }
  await store.retireRotationKey({ purpose: input.purpose, oldKey, rotationId, disableInKms: input.disableOldKeyInKms });
  status.retiredAt = new Date().toISOString();
  status.step = 'completed';
  setStatus('completed');
  return { ...status, outcome: 'completed' };
}

/** Sweeps the old funding address into the new one with the pool's own sweep workflow, until nothing is left. */
async function moveFunds(input: KmsRotationInput, from: string, fromKeyId: string, to: string, sweeps: SweepReport[]): Promise<void> {
  for (let round = 0; round < MAX_SWEEPS; round++) {
    let report: SweepReport;
    try {
      report = await executeChild<typeof utxoSweepWorkflow>('utxoSweepWorkflow', {
        workflowId: sweepWorkflowId(from),
        args: [{ requestedBy: input.trigger, changeAddress: from, changeKeyId: fromKeyId, destinationAddress: to }],
      });
    } catch (err) {
      // Another sweep of the old address (the nightly one) holds the id: let it finish, then sweep again. By name:
      // the error class lives in @temporalio/common, which workflow code does not import.
      if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError') {
        await sleep('1 minute');
        continue;
      }
      throw err;
    }
    sweeps.push(report);
    if (report.outcome !== 'completed' || report.remaining === 0) return;
  }
  throw ApplicationFailure.nonRetryable(
    `the old funding address still holds outputs after ${MAX_SWEEPS} sweeps`,
    'RotationSweepIncomplete',
  );
}

/** `30s`, `15m`, `24h`, `7d` (validated by the config and the API before it gets here). */
function durationMs(duration: string): number {
  const match = /^(\d+)\s*(s|m|h|d)$/.exec(duration);
  if (!match) return 0;
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: DAY_MS }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

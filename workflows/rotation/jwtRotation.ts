import { proxyActivities, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { RotationActivities } from '../../activities/rotation/rotationActivities';
import { WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { jwtRotationStatusQuery, type JwtRotationInput, type JwtRotationStatus } from './shared';

// Store writes only: idempotent, retried until they land (a rotation left half-way would keep an old kid forever).
const store = proxyActivities<RotationActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * Rotates the JWT signing key with overlap: add a new kid (it verifies everywhere before it signs anywhere), make
 * it active, keep the previous kid verifying until every token it signed has expired, then remove it. Tokens in
 * flight stay valid throughout. Id `jwt-rotation`: one at a time.
 */
export async function jwtKeyRotationWorkflow(input: JwtRotationInput): Promise<JwtRotationStatus> {
  const info = workflowInfo();
  const rotationId = `${info.workflowId}@${info.runId}`;
  const status: JwtRotationStatus = { step: 'adding', requestedBy: input.requestedBy, startedAt: new Date().toISOString() };
  setHandler(jwtRotationStatusQuery, () => status);
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'jwt-rotation' },
    { key: WORKFLOW_STATUS, value: 'adding' },
  ]);
  const setStep = (step: JwtRotationStatus['step']) => {
    status.step = step;
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: step }]);
  };
  // See kmsRotation.ts: twice the settings cache, plus a margin, until every process has seen a change.
  const propagationMs = input.settingsCacheMs * 2 + 1_000;

  const { kid, previousKid } = await store.addJwtKey({
    ...(input.newKid && { newKid: input.newKid }),
    rotationId,
    requestedAt: status.startedAt,
  });
  status.newKid = kid;
  status.previousKid = previousKid;

  setStep('propagating');
  await sleep(propagationMs);

  setStep('activating');
  await store.activateJwtKey({ kid, previousKid, rotationId });
  status.activatedAt = new Date().toISOString();

  // A process that has not seen the activation yet may sign with the previous kid for up to propagationMs more;
  // its tokens live tokenLifetimeSec (TTL plus clock skew).
  setStep('draining');
  const drainMs = propagationMs + input.tokenLifetimeSec * 1_000;
  status.removeAt = new Date(Date.now() + drainMs).toISOString();
  await sleep(drainMs);

  setStep('removing');
  await store.removeJwtKey({ kid: previousKid, rotationId });
  status.removedAt = new Date().toISOString();
  setStep('completed');
  return status;
}

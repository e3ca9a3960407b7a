import { ActivityFailure, ApplicationFailure, proxyActivities, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { IssuerKeyActivities } from '../../activities/issuerKeys/revocationActivities';
import { WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import {
  ISSUER_KEY_FAILURES,
  REVOCATION_TIME_SKEW_MS,
  type IssuerKeyRevocationInput,
  type IssuerKeyRevocationReport,
  type RevocableKey,
} from './shared';

// The check reads the key settings and the KMS's public key: a few retries ride out a blip, and an operator is
// waiting for the answer. An unknown key or a refusal is final at once.
const check = proxyActivities<IssuerKeyActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
});

// The write is idempotent and a half-recorded revocation must land, so it is retried for as long as it takes.
const store = proxyActivities<IssuerKeyActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * Revokes an issuer key: check it is in the key directory (and, without `force`, that it no longer signs), record
 * the revocation, then wait until every process's key settings cache has seen it. Signatures the key made from
 * `revokedAt` on no longer count as the issuer's; what it signed before stays authentic. Id
 * `issuer-key-revocation-<kid>`: the history is the audit trail (who, why, when), the store keeps every request.
 */
export async function issuerKeyRevocationWorkflow(input: IssuerKeyRevocationInput): Promise<IssuerKeyRevocationReport> {
  const info = workflowInfo();
  const setStatus = (value: string) => upsertSearchAttributes([{ key: WORKFLOW_STATUS, value }]);
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'issuer-key-revocation' },
    { key: WORKFLOW_STATUS, value: 'checking' },
  ]);
  const requestedRevokedAt = input.revokedAt ?? new Date().toISOString();
  if (Date.parse(requestedRevokedAt) > Date.now() + REVOCATION_TIME_SKEW_MS) {
    setStatus('refused');
    throw ApplicationFailure.nonRetryable(`the revocation time ${requestedRevokedAt} is in the future`, ISSUER_KEY_FAILURES.refused);
  }

  let key: RevocableKey & { signing: boolean };
  try {
    key = await check.checkIssuerKeyRevocation({ kid: input.kid, force: input.force });
  } catch (err) {
    const failure = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
    if (failure?.type !== ISSUER_KEY_FAILURES.unknownKey && failure?.type !== ISSUER_KEY_FAILURES.refused) throw err;
    setStatus('refused');
    // The workflow's own failure carries the type, so callers read it without unwrapping the activity failure.
    throw ApplicationFailure.nonRetryable(failure.message, failure.type);
  }

  setStatus('recording');
  const recorded = await store.recordIssuerKeyRevocation({
    kid: key.kid,
    publicKey: key.publicKey,
    revokedAt: requestedRevokedAt,
    reason: input.reason,
    requestedBy: input.requestedBy,
    workflowId: info.workflowId,
    runId: info.runId,
  });
  // Every process re-reads the key settings within settingsCacheMs: once this returns, no process of ours still
  // counts a signature the revocation refuses.
  await sleep(input.settingsCacheMs * 2 + 1_000);
  setStatus('revoked');
  return {
    kid: key.kid,
    publicKey: key.publicKey,
    requestedBy: input.requestedBy,
    requestedRevokedAt,
    signingKeyRevoked: key.signing,
    ...recorded,
  };
}

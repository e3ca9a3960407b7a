import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { issuerKeyRevocationWorkflow } from '../../../workflows';
import { ISSUER_KEY_FAILURES, type IssuerKeyRevocationInput } from '../../../workflows/issuerKeys/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const KEY = { kid: 'issuer', publicKey: '02'.padEnd(66, 'a'), status: 'retired' as const, signing: false };

function revocationInput(overrides: Partial<IssuerKeyRevocationInput> = {}): IssuerKeyRevocationInput {
  return {
    kid: KEY.kid,
    reason: 'key material exposed in a backup',
    revokedAt: '2026-03-01T12:00:00.000Z',
    requestedBy: 'cli:alice',
    trigger: 'test',
    force: false,
    settingsCacheMs: 5_000,
    ...overrides,
  };
}

function revocationActivities(check: () => Promise<typeof KEY> = async () => KEY) {
  return mockActivities({
    checkIssuerKeyRevocation: check,
    recordIssuerKeyRevocation: async (input) => ({ revokedAt: input.revokedAt, reason: input.reason, changed: true }),
  });
}

describe('issuer key revocation', () => {
  const server = timeSkippingEnvForBlock();

  it('records the revocation with who asked, why and from when, and reports it once every process has seen it', async () => {
    const activities = revocationActivities();
    const input = revocationInput();
    const { report, startedAt, closedAt } = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(issuerKeyRevocationWorkflow, {
        taskQueue,
        workflowId: 'issuer-key-revocation-issuer',
        args: [input],
      });
      const result = await handle.result();
      const description = await handle.describe();
      return { report: result, startedAt: description.startTime, closedAt: description.closeTime! };
    });
    expect(report).toEqual({
      kid: 'issuer',
      publicKey: KEY.publicKey,
      revokedAt: input.revokedAt,
      reason: input.reason,
      changed: true,
      requestedBy: 'cli:alice',
      requestedRevokedAt: input.revokedAt,
      signingKeyRevoked: false,
    });
    expect(activities.checkIssuerKeyRevocation).toHaveBeenCalledWith({ kid: 'issuer', force: false });
    expect(activities.recordIssuerKeyRevocation).toHaveBeenCalledWith({
      kid: 'issuer',
      publicKey: KEY.publicKey,
      revokedAt: input.revokedAt,
      reason: input.reason,
      requestedBy: 'cli:alice',
      workflowId: 'issuer-key-revocation-issuer',
      runId: expect.any(String),
    });
    // It waits out the key settings cache (2 × 5 s + 1 s) before it reports the key revoked.
    expect(closedAt.getTime() - startedAt.getTime()).toBeGreaterThanOrEqual(11_000);
  });

  it('revokes from the time it starts when no revocation time is given', async () => {
    const activities = revocationActivities();
    const { report, startedAt } = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(issuerKeyRevocationWorkflow, {
        taskQueue,
        workflowId: 'issuer-key-revocation-now',
        args: [revocationInput({ revokedAt: undefined })],
      });
      return { report: await handle.result(), startedAt: (await handle.describe()).startTime };
    });
    // The workflow's clock, not this process's: the time-skipping server's runs ahead.
    const asked = activities.recordIssuerKeyRevocation.mock.calls[0]![0].revokedAt;
    expect(Math.abs(Date.parse(asked) - startedAt.getTime())).toBeLessThan(5_000);
    expect(report.requestedRevokedAt).toBe(asked);
  });

  it.each([
    ['a key that signs new records', ISSUER_KEY_FAILURES.refused],
    ['a key the directory does not list', ISSUER_KEY_FAILURES.unknownKey],
  ])('fails with the refusal’s own type and records nothing for %s', async (_case, type) => {
    const activities = revocationActivities(async () => {
      throw ApplicationFailure.nonRetryable('refused by the check', type);
    });
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(issuerKeyRevocationWorkflow, {
        taskQueue,
        workflowId: `issuer-key-revocation-${type}`,
        args: [revocationInput()],
      }),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    // The workflow's own failure carries the type: callers need not unwrap an activity failure.
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(ApplicationFailure);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type, message: 'refused by the check' });
    expect(activities.checkIssuerKeyRevocation).toHaveBeenCalledTimes(1);
    expect(activities.recordIssuerKeyRevocation).not.toHaveBeenCalled();
  });

  it('refuses a revocation time in the future without touching the key settings', async () => {
    const activities = revocationActivities();
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(issuerKeyRevocationWorkflow, {
        taskQueue,
        workflowId: 'issuer-key-revocation-future',
        // Far ahead: the time-skipping server's clock runs ahead of this process's.
        args: [revocationInput({ revokedAt: '2999-01-01T00:00:00.000Z' })],
      }),
    ).catch((err: unknown) => err);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: ISSUER_KEY_FAILURES.refused });
    expect(activities.checkIssuerKeyRevocation).not.toHaveBeenCalled();
    expect(activities.recordIssuerKeyRevocation).not.toHaveBeenCalled();
  });

  it('passes on a failure it does not understand as the activity’s failure', async () => {
    const activities = revocationActivities(async () => {
      throw ApplicationFailure.nonRetryable('the KMS refused the lookup', 'KmsRejected');
    });
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(issuerKeyRevocationWorkflow, {
        taskQueue,
        workflowId: 'issuer-key-revocation-kms',
        args: [revocationInput()],
      }),
    ).catch((err: unknown) => err);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(ActivityFailure);
    expect((failure as WorkflowFailedError).cause?.cause).toMatchObject({ type: 'KmsRejected' });
    expect(activities.recordIssuerKeyRevocation).not.toHaveBeenCalled();
  });
});

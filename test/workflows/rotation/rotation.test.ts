import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { jwtKeyRotationWorkflow, kmsRotationWorkflow } from '../../../workflows';
import {
  APPROVER_IS_STARTER_REASON,
  approveRotationSignal,
  cancelRotationSignal,
  type JwtRotationInput,
  type KeyInfo,
  type KmsRotationInput,
} from '../../../workflows/rotation/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { POOL_ACCOUNTS, POOL_SETTINGS } from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const DAY = 24 * 3600 * 1000;
const OLD: KeyInfo = { keyIdentifier: 'issuer-old', pubKeyHex: '02'.padEnd(66, 'a') };
const NEW: KeyInfo = { keyIdentifier: 'issuer-new', pubKeyHex: '02'.padEnd(66, 'b') };

function kmsInput(overrides: Partial<KmsRotationInput> = {}): KmsRotationInput {
  return {
    purpose: 'issuer',
    newKeyIdentifier: NEW.keyIdentifier,
    requestedBy: 'operator',
    trigger: 'test',
    autoApproveAfter: null,
    gracePeriodDays: 7,
    disableOldKeyInKms: true,
    settingsCacheMs: 5_000,
    ...overrides,
  };
}

function rotationStore() {
  return mockActivities({
    preflightRotationKey: async () => ({ oldKey: OLD, newKey: NEW }),
    stageRotationKey: async () => undefined,
    unstageRotationKey: async () => undefined,
    cutOverRotationKey: async () => undefined,
    retireRotationKey: async () => undefined,
  });
}

describe('key rotations', () => {
  const server = timeSkippingEnvForBlock();

  it('cuts over on an operator’s approval and retires the old key after the grace period', async () => {
    const activities = rotationStore();
    const input = kmsInput();
    const report = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(kmsRotationWorkflow, {
        taskQueue,
        workflowId: 'kms-rotation-approve',
        args: [input],
      });
      await handle.signal(approveRotationSignal, { by: 'alice' });
      return handle.result();
    });
    expect(report).toMatchObject({ outcome: 'completed', step: 'completed', approvedBy: 'alice', oldKey: OLD, newKey: NEW, refused: [] });
    expect(Date.parse(report.retiredAt!) - Date.parse(report.cutoverAt!)).toBeGreaterThanOrEqual(input.gracePeriodDays * DAY);
    expect(activities.cutOverRotationKey).toHaveBeenCalledWith(expect.objectContaining({ purpose: 'issuer', oldKey: OLD, newKey: NEW }));
    expect(activities.retireRotationKey).toHaveBeenCalledWith(
      expect.objectContaining({ oldKey: OLD, disableInKms: input.disableOldKeyInKms }),
    );
    expect(activities.unstageRotationKey).not.toHaveBeenCalled();
  });

  it('refuses an approval from the credential that started the rotation and cuts over on another key’s approval', async () => {
    const activities = rotationStore();
    const report = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(kmsRotationWorkflow, {
        taskQueue,
        workflowId: 'kms-rotation-four-eyes',
        args: [kmsInput({ startedByKeyId: 'bootstrap' })],
      });
      await handle.signal(approveRotationSignal, { by: 'alice', keyId: 'bootstrap' });
      // A signal without a credential cannot prove it is another one.
      await handle.signal(approveRotationSignal, { by: 'mallory' });
      await handle.signal(approveRotationSignal, { by: 'bob', keyId: '0123456789abcdef' });
      return handle.result();
    });
    expect(report).toMatchObject({
      outcome: 'completed',
      startedByKeyId: 'bootstrap',
      approvedBy: 'bob',
      approvedByKeyId: '0123456789abcdef',
    });
    expect(report.refused).toEqual([
      expect.objectContaining({ signal: 'approve', by: 'alice', reason: APPROVER_IS_STARTER_REASON }),
      expect.objectContaining({ signal: 'approve', by: 'mallory', reason: APPROVER_IS_STARTER_REASON }),
    ]);
    expect(activities.cutOverRotationKey).toHaveBeenCalledTimes(1);
  });

  it('withdraws the staged key on cancel before the cutover, and refuses an approval that comes after the cancel', async () => {
    const activities = rotationStore();
    const report = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(kmsRotationWorkflow, {
        taskQueue,
        workflowId: 'kms-rotation-cancel',
        args: [kmsInput()],
      });
      await handle.signal(cancelRotationSignal, { by: 'bob', reason: 'wrong key' });
      await handle.signal(approveRotationSignal, { by: 'alice' });
      return handle.result();
    });
    expect(report).toMatchObject({ outcome: 'cancelled', step: 'cancelled', cancelledBy: 'bob' });
    expect(report.approvedBy).toBeUndefined();
    expect(report.refused).toEqual([expect.objectContaining({ signal: 'approve', by: 'alice' })]);
    expect(activities.unstageRotationKey).toHaveBeenCalledWith(expect.objectContaining({ purpose: 'issuer', newKey: NEW }));
    expect(activities.cutOverRotationKey).not.toHaveBeenCalled();
    expect(activities.retireRotationKey).not.toHaveBeenCalled();
  });

  it('approves itself after the configured delay when no operator answers', async () => {
    const activities = rotationStore();
    const report = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(kmsRotationWorkflow, {
        taskQueue,
        workflowId: 'kms-rotation-auto',
        args: [kmsInput({ autoApproveAfter: '24h' })],
      }),
    );
    expect(report).toMatchObject({ outcome: 'completed', approvedBy: 'auto-approval' });
    expect(Date.parse(report.approvedAt!) - Date.parse(report.stagedAt!)).toBeGreaterThanOrEqual(DAY);
  });

  it('fails at preflight without staging anything when the KMS refuses the new key', async () => {
    const activities = mockActivities({
      ...rotationStore(),
      preflightRotationKey: async () => {
        throw ApplicationFailure.nonRetryable('the KMS refused the key', 'RotationPreflightFailed');
      },
    });
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(kmsRotationWorkflow, { taskQueue, workflowId: 'kms-rotation-refused', args: [kmsInput()] }),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause?.cause).toMatchObject({
      type: 'RotationPreflightFailed',
      message: 'the KMS refused the key',
    });
    expect(activities.stageRotationKey).not.toHaveBeenCalled();
  });

  it('moves the old funding address’s outputs with a sweep child workflow', async () => {
    const oldKey: KeyInfo = {
      keyIdentifier: 'funding-old',
      pubKeyHex: '02'.padEnd(66, 'c'),
      address: '1PrevFundingAddressXXXXXXXXXXXXXX',
    };
    const newKey: KeyInfo = { keyIdentifier: 'funding-new', pubKeyHex: '02'.padEnd(66, 'd'), address: '1NewFundingAddressXXXXXXXXXXXXXXX' };
    const activities = mockActivities({
      ...rotationStore(),
      preflightRotationKey: async () => ({ oldKey, newKey }),
      loadPoolSettings: async () => POOL_SETTINGS,
      resolvePoolAccounts: async () => POOL_ACCOUNTS,
      syncAddress: async (target) => ({ chainHeight: 800_000, accounts: [{ ...target, listed: 0, added: 0, markedSpent: 0, dropped: 0 }] }),
      planSweep: async () => ({ action: 'skip', reason: 'nothing_to_sweep', eligible: 0, dustOnly: false }),
    });
    const report = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(kmsRotationWorkflow, {
        taskQueue,
        workflowId: 'kms-rotation-funding',
        args: [kmsInput({ purpose: 'funding', newKeyIdentifier: newKey.keyIdentifier, autoApproveAfter: '1h', gracePeriodDays: 1 })],
      }),
    );
    expect(report.outcome).toBe('completed');
    // One sweep after the cutover and one last sweep before retiring; each found nothing left.
    expect(report.sweeps).toHaveLength(2);
    expect(report.sweeps[0]).toMatchObject({ outcome: 'skipped', changeAddress: oldKey.address, destinationAddress: newKey.address });
    expect(activities.planSweep).toHaveBeenCalledWith(
      expect.objectContaining({ sweep: expect.objectContaining({ changeKeyId: oldKey.keyIdentifier }) }),
    );
  });

  it('keeps the previous JWT kid until every token it signed has expired, then removes it', async () => {
    const activities = mockActivities({
      addJwtKey: async ({ newKid }) => ({ kid: newKid ?? 'generated', previousKid: 'jwt-previous' }),
      activateJwtKey: async () => undefined,
      removeJwtKey: async () => undefined,
    });
    const input: JwtRotationInput = {
      requestedBy: 'operator',
      trigger: 'test',
      newKid: 'jwt-next',
      tokenLifetimeSec: 3_600,
      settingsCacheMs: 5_000,
    };
    const report = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(jwtKeyRotationWorkflow, { taskQueue, workflowId: 'jwt-rotation', args: [input] }),
    );
    expect(report).toMatchObject({ step: 'completed', newKid: input.newKid, previousKid: 'jwt-previous' });
    expect(Date.parse(report.removedAt!) - Date.parse(report.activatedAt!)).toBeGreaterThanOrEqual(input.tokenLifetimeSec * 1000);
    expect(activities.activateJwtKey).toHaveBeenCalledWith(expect.objectContaining({ kid: input.newKid, previousKid: 'jwt-previous' }));
    expect(activities.removeJwtKey).toHaveBeenCalledWith(expect.objectContaining({ kid: 'jwt-previous' }));
  });
});

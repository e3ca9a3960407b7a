import { ApplicationFailure, type WorkflowFailedError } from '@temporalio/client';
import { merkleProofs, verifyMerkleProof } from '../../../src/anchoring/merkle';
import { registrationWorkflow } from '../../../workflows';
import { RECORD_ACTIVITY_OPTIONS } from '../../../workflows/anchoring/anchor';
import { anchorAssignedSignal, type AnchoringPolicy } from '../../../workflows/anchoring/shared';
import { registrationProgressQuery } from '../../../workflows/registration/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import {
  chainShortOfFunds,
  fakeChainActivities,
  hex64,
  registrationInput,
  registrationRecordHash,
  registrationStores,
  txidOfPlan,
} from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const SINGLE: AnchoringPolicy = { mode: 'single', minConfirmations: 3, pollSeconds: 60 };

describe('registrationWorkflow', () => {
  const server = timeSkippingEnvForBlock();
  /** Runs a registration of `uid` to its end on a worker with these activities. */
  const register = (uid: string, activities: object) =>
    withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(registrationWorkflow, {
        taskQueue,
        workflowId: `registration-${uid}`,
        args: [registrationInput(uid)],
      }),
    );

  it('anchors a record in single mode, waiting out the confirmations on durable timers', async () => {
    const uid = 'reg-single-1';
    const activities = { ...mockActivities(registrationStores()), ...mockActivities(fakeChainActivities(SINGLE)) };
    const startedAt = await server.env.currentTimeMs();
    const result = await register(uid, activities);
    const recordHash = registrationRecordHash(uid);
    const txid = txidOfPlan(activities.signTransaction.mock.calls[0]![0]);

    expect(activities.planAnchor).toHaveBeenCalledWith(expect.objectContaining({ recordHashes: [recordHash], round: 1 }));
    expect(result).toMatchObject({ uid, recordHash, txid, vout: 0, proof: merkleProofs([recordHash])[0] });
    expect(verifyMerkleProof(recordHash, result.proof)).toBe(true);
    expect(result.confirmations).toBeGreaterThanOrEqual(SINGLE.minConfirmations);
    expect(activities.signRegistrationRecord).toHaveBeenCalledWith({ uid });
    expect(activities.markRegistrationAnchoring).toHaveBeenCalledWith({ uid, txid });
    expect(activities.markRegistrationAnchored).toHaveBeenCalledWith(expect.objectContaining({ uid, txid, proof: result.proof }));
    expect(activities.markRegistrationFailed).not.toHaveBeenCalled();
    // The pool adds the change output only after the confirmations, which took (minConfirmations - 1) polls apart.
    expect(activities.ingestPoolOutputs).toHaveBeenCalledWith(expect.objectContaining({ txid }));
    expect((await server.env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(
      (SINGLE.minConfirmations - 1) * SINGLE.pollSeconds * 1000,
    );
  });

  it('waits for pool funds instead of failing, and anchors once the pool has them', async () => {
    const uid = 'reg-no-funds';
    const activities = { ...mockActivities(registrationStores()), ...mockActivities(chainShortOfFunds(SINGLE, 2)) };
    const startedAt = await server.env.currentTimeMs();
    const result = await register(uid, activities);
    expect(activities.planAnchor).toHaveBeenCalledTimes(3);
    expect(activities.markRegistrationFailed).not.toHaveBeenCalled();
    expect(result.txid).toBe(txidOfPlan(activities.signTransaction.mock.calls[0]![0]));
    // Two waits of 30 s on durable timers before the third plan.
    expect((await server.env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(60_000);
  });

  it('gives up on a KMS that keeps failing after the record activities’ attempts, and says why', async () => {
    const uid = 'reg-kms-down';
    const activities = {
      ...mockActivities(registrationStores()),
      ...mockActivities({
        signRegistrationRecord: async () => {
          throw ApplicationFailure.retryable('KMS unreachable', 'KmsUnavailable');
        },
      }),
    };
    const failure = await register(uid, activities).catch((err: unknown) => err);

    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'KmsUnavailable', message: 'KMS unreachable' });
    expect(activities.signRegistrationRecord).toHaveBeenCalledTimes(RECORD_ACTIVITY_OPTIONS.retry!.maximumAttempts!);
    expect(activities.markRegistrationFailed).toHaveBeenCalledWith({ uid, reason: 'KMS unreachable' });
  });

  it('in batch mode waits for its batch’s answer and fails with the reason a failed batch gives', async () => {
    const uid = 'reg-batch-refused';
    const workflowId = `registration-${uid}`;
    const activities = {
      ...mockActivities(registrationStores()),
      ...mockActivities({
        ...fakeChainActivities({ ...SINGLE, mode: 'batch' }),
        // The batcher's answer, as a failed batch signals it.
        requestBatchAnchor: async ({ subjectWorkflowId }) => {
          await server.env.client.workflow.getHandle(subjectWorkflowId).signal(anchorAssignedSignal, {
            ok: false,
            reason: 'the anchor’s inputs were reported missing 3 times',
            type: 'MissingInputs',
          });
        },
      }),
    };
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(registrationWorkflow, { taskQueue, workflowId, args: [registrationInput(uid)] }),
    ).catch((err: unknown) => err);

    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'MissingInputs' });
    expect(activities.requestBatchAnchor).toHaveBeenCalledWith({
      key: `registration:${uid}`,
      recordHash: registrationRecordHash(uid),
      subjectWorkflowId: workflowId,
    });
    expect(activities.markRegistrationFailed).toHaveBeenCalledWith({ uid, reason: 'the anchor’s inputs were reported missing 3 times' });
    expect(activities.planAnchor).not.toHaveBeenCalled();
  });

  it('answers its progress query with the step and the anchor’s txid', async () => {
    const uid = 'reg-progress';
    const workflowId = `registration-${uid}`;
    const txid = hex64('batch-tx');
    const activities = {
      ...mockActivities(registrationStores()),
      ...mockActivities({
        ...fakeChainActivities({ mode: 'batch', minConfirmations: 1, pollSeconds: 60 }),
        requestBatchAnchor: async ({ subjectWorkflowId, recordHash }) => {
          await server.env.client.workflow.getHandle(subjectWorkflowId).signal(anchorAssignedSignal, {
            ok: true,
            txid,
            vout: 0,
            proof: merkleProofs([recordHash])[0]!,
            batchWorkflowId: 'anchor-batch-test',
          });
        },
        recordConfirmations: async () => ({ confirmations: 1, blockHeight: 800_000 }),
      }),
    };
    const { result, progress } = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(registrationWorkflow, {
        taskQueue,
        workflowId,
        args: [registrationInput(uid)],
      });
      const result = await handle.result();
      return { result, progress: await handle.query(registrationProgressQuery) };
    });
    expect(result).toMatchObject({ uid, txid, confirmations: 1 });
    expect(progress).toEqual({ step: 'anchored', recordHash: registrationRecordHash(uid), txid, confirmations: 1 });
  });
});

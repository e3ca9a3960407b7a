import { ApplicationFailure, type WorkflowFailedError } from '@temporalio/client';
import { merkleProofs } from '../../../src/anchoring/merkle';
import { registrationWorkflow } from '../../../workflows';
import { ISSUER_SIGNING_OPTIONS } from '../../../workflows/anchoring/anchor';
import { anchorSettledSignal, type AnchoringPolicy, type AnchorRequest, type AnchorSettlement } from '../../../workflows/anchoring/shared';
import { registrationProgressQuery } from '../../../workflows/registration/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import {
  fakeChainActivities,
  hex64,
  registrationInput,
  registrationRecordHash,
  registrationStores,
  settledRegistrationRequest,
} from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const BATCH: AnchoringPolicy = { mode: 'batch', minConfirmations: 2, pollSeconds: 60 };

describe('registrationWorkflow', () => {
  const server = timeSkippingEnvForBlock();
  /** Runs a registration of `uid` to its end on a worker with these activities; returns its result and history. */
  const register = (uid: string, activities: object) =>
    withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(registrationWorkflow, {
        taskQueue,
        workflowId: `registration-${uid}`,
        args: [registrationInput(uid)],
      });
      const result = await handle.result();
      return { result, history: await handle.fetchHistory(), progress: await handle.query(registrationProgressQuery) };
    });
  /** A batch as the record sees it: it answers the request with this settlement. */
  const batchAnswering = (settlement: (request: AnchorRequest) => AnchorSettlement) =>
    registrationStores(async (request) => {
      await server.env.client.workflow.getHandle(request.subjectWorkflowId).signal(anchorSettledSignal, settlement(request));
    });

  it('takes one activity and one signal from its batch: at most 20 history events on the hot path', async () => {
    const uid = 'reg-lean';
    const txid = hex64('lean-tx');
    const activities = mockActivities({
      ...batchAnswering(({ recordHash }) => ({
        ok: true,
        txid,
        vout: 0,
        proof: merkleProofs([recordHash])[0]!,
        blockHeight: 800_001,
        confirmations: 2,
      })),
      ...fakeChainActivities(BATCH),
    });
    const { result, history, progress } = await register(uid, activities);

    expect(result).toEqual({
      uid,
      recordHash: registrationRecordHash(uid),
      txid,
      vout: 0,
      proof: merkleProofs([registrationRecordHash(uid)])[0],
      confirmations: 2,
    });
    expect(activities.prepareRegistration).toHaveBeenCalledWith(expect.objectContaining({ registrationId: `registration-${uid}` }));
    const scheduled = history
      .events!.filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
    expect(scheduled).toEqual(['prepareRegistration']);
    expect(history.events!.length).toBeLessThanOrEqual(20);
    expect(progress).toEqual({ step: 'anchored', recordHash: registrationRecordHash(uid), txid, confirmations: 2 });
    // The batch wrote the record's state: the workflow writes nothing of its own on the way.
    for (const name of [
      'persistPendingRegistration',
      'signRegistrationRecord',
      'markRegistrationAnchoring',
      'markRegistrationAnchored',
      'markRegistrationFailed',
    ] as const) {
      expect(activities[name]).not.toHaveBeenCalled();
    }
  });

  it('fails with the reason a failed batch gives, and marks its record failed', async () => {
    const uid = 'reg-batch-refused';
    const reason = 'the anchor’s inputs were reported missing 3 times';
    const activities = mockActivities({
      ...batchAnswering(() => ({ ok: false, reason, type: 'MissingInputs' })),
      ...fakeChainActivities(BATCH),
    });
    const failure = await register(uid, activities).catch((err: unknown) => err);

    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'MissingInputs', message: reason });
    expect(activities.markRegistrationFailed).toHaveBeenCalledWith({ uid, reason });
    expect(activities.planAnchor).not.toHaveBeenCalled();
  });

  it('gives up on a KMS that keeps failing after the signing activity’s attempts, and says why', async () => {
    const uid = 'reg-kms-down';
    const activities = mockActivities({
      ...registrationStores(),
      prepareRegistration: async () => {
        throw ApplicationFailure.retryable('KMS unreachable', 'KmsUnavailable');
      },
    });
    const failure = await register(uid, activities).catch((err: unknown) => err);

    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'KmsUnavailable', message: 'KMS unreachable' });
    expect(activities.prepareRegistration).toHaveBeenCalledTimes(ISSUER_SIGNING_OPTIONS.retry!.maximumAttempts!);
    expect(activities.markRegistrationFailed).toHaveBeenCalledWith({ uid, reason: 'KMS unreachable' });
  });

  it('asks where it stands after long without a word: waits while a batch holds it, asks again when lost, and counts its own confirmations after a batch that closed', async () => {
    const uid = 'reg-unsettled';
    const txid = hex64('orphaned-tx');
    const proof = merkleProofs([registrationRecordHash(uid)])[0]!;
    const answers = [{ state: 'held' as const }, { state: 'lost' as const }, { state: 'broadcast' as const, txid, vout: 0, proof }];
    const chain = fakeChainActivities(BATCH);
    const activities = mockActivities({
      ...registrationStores(),
      ...chain,
      settledRecordState: async () => answers.shift()!,
      requestBatchAnchor: async () => undefined,
      // The orphaned transaction is in the mempool: each poll finds one more confirmation.
      recordConfirmations: async (polled) => {
        await chain.broadcastTransaction({ txid: polled } as never);
        return chain.recordConfirmations(polled);
      },
    });
    const startedAt = await server.env.currentTimeMs();
    const { result } = await register(uid, activities);

    expect((await server.env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(3 * 3600_000);
    expect(activities.settledRecordState).toHaveBeenCalledTimes(3);
    expect(activities.settledRecordState).toHaveBeenCalledWith({ key: `registration:${uid}`, uid });
    expect(activities.requestBatchAnchor).toHaveBeenCalledTimes(1);
    expect(activities.requestBatchAnchor).toHaveBeenCalledWith(settledRegistrationRequest(uid));
    expect(activities.recordConfirmations).toHaveBeenCalledTimes(BATCH.minConfirmations);
    expect(activities.markRegistrationsAnchored).toHaveBeenCalledWith(
      expect.objectContaining({ txid, records: [{ uid, recordHash: registrationRecordHash(uid) }] }),
    );
    expect(result).toMatchObject({ uid, txid, proof, confirmations: BATCH.minConfirmations });
  });
});

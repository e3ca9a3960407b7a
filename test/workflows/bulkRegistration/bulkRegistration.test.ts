import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { merkleProofs } from '../../../src/anchoring/merkle';
import type { BulkRegistrationActivities } from '../../../activities/bulkRegistration/bulkRegistrationActivities';
import { bulkRegistrationWorkflow } from '../../../workflows';
import type { AnchoringPolicy } from '../../../workflows/anchoring/shared';
import { bulkRegistrationProgressQuery } from '../../../workflows/bulkRegistration/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { chainShortOfFunds, fakeChainActivities, hex64, nonRetryable, txidOfPlan } from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const POLICY: AnchoringPolicy = { mode: 'batch', minConfirmations: 2, pollSeconds: 60 };

/** The batch's own activities, answering as the stores would for `chunks` chunks of `size` records each. */
function batchStores(chunks: number, size = 1000): Pick<BulkRegistrationActivities, keyof BulkRegistrationActivities> {
  return {
    openBatch: async () => ({ chunkCount: chunks, itemCount: chunks * size }),
    sealChunk: async ({ chunk }) => ({ chunk, size, duplicates: 0, treeHeadHash: size > 0 ? hex64(`head-${chunk}`) : null }),
    signTreeHeads: async () => ({
      leaves: size > 0 ? Array.from({ length: chunks }, (_, chunk) => ({ chunk, treeHeadHash: hex64(`head-${chunk}`) })) : [],
    }),
    markBatchBroadcast: async () => undefined,
    completeBatch: async () => undefined,
    markBatchFailed: async () => undefined,
  };
}

describe('bulkRegistrationWorkflow', () => {
  const server = timeSkippingEnvForBlock();
  const run = (batchId: string, activities: object) =>
    withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(bulkRegistrationWorkflow, {
        taskQueue,
        workflowId: `bulk-registration-${batchId}`,
        args: [{ batchId }],
      }),
    );

  it('seals every chunk, signs the tree heads once, anchors them in one transaction and completes the batch', async () => {
    const batchId = 'pb-000000000000000000000001';
    const activities = { ...mockActivities(batchStores(10)), ...mockActivities(fakeChainActivities(POLICY)) };
    const result = await run(batchId, activities);

    expect(activities.sealChunk.mock.calls.map(([input]) => input.chunk).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(activities.signTreeHeads).toHaveBeenCalledTimes(1);
    const heads = Array.from({ length: 10 }, (_, chunk) => hex64(`head-${chunk}`));
    expect(activities.planAnchor).toHaveBeenCalledTimes(1);
    expect(activities.planAnchor).toHaveBeenCalledWith(expect.objectContaining({ recordHashes: heads, round: 1 }));
    expect(activities.signTransaction).toHaveBeenCalledTimes(1);
    const txid = txidOfPlan(activities.signTransaction.mock.calls[0]![0]);
    const proofs = merkleProofs(heads);
    expect(activities.markBatchBroadcast).toHaveBeenCalledWith({
      batchId,
      txid,
      anchors: proofs.map((proof, chunk) => ({ chunk, proof })),
    });
    expect(activities.completeBatch).toHaveBeenCalledWith({ batchId, anchor: { txid, blockHeight: expect.any(Number) } });
    expect(activities.markBatchFailed).not.toHaveBeenCalled();
    expect(result).toMatchObject({ batchId, registered: 10_000, duplicates: 0, txid });
    expect(result.confirmations).toBeGreaterThanOrEqual(POLICY.minConfirmations);
  });

  it('waits for pool funds instead of failing, then anchors once the pool has them', async () => {
    const batchId = 'pb-000000000000000000000002';
    const activities = { ...mockActivities(batchStores(2)), ...mockActivities(chainShortOfFunds(POLICY, 3)) };
    const startedAt = await server.env.currentTimeMs();
    const result = await run(batchId, activities);
    expect(activities.planAnchor).toHaveBeenCalledTimes(4);
    expect(activities.markBatchFailed).not.toHaveBeenCalled();
    expect(result.txid).toBe(txidOfPlan(activities.signTransaction.mock.calls[0]![0]));
    // Three waits of 30 s on durable timers.
    expect((await server.env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(90_000);
  });

  it('shows its progress while it waits for funds', async () => {
    const batchId = 'pb-000000000000000000000003';
    const activities = { ...mockActivities(batchStores(3)), ...mockActivities(chainShortOfFunds(POLICY, Infinity)) };
    await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(bulkRegistrationWorkflow, {
        taskQueue,
        workflowId: `bulk-registration-${batchId}`,
        args: [{ batchId }],
      });
      for (let i = 0; i < 100 && activities.planAnchor.mock.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      const progress = await handle.query(bulkRegistrationProgressQuery);
      expect(progress).toMatchObject({ step: 'waiting-for-funds', chunks: 3, chunksSealed: 3, registered: 3000 });
      await handle.terminate('test done');
    });
  });

  it('completes without a transaction when every item was a duplicate', async () => {
    const batchId = 'pb-000000000000000000000004';
    const activities = { ...mockActivities(batchStores(1, 0)), ...mockActivities(fakeChainActivities(POLICY)) };
    const result = await run(batchId, activities);
    expect(result).toEqual({ batchId, registered: 0, duplicates: 0, txid: null, confirmations: 0 });
    expect(activities.planAnchor).not.toHaveBeenCalled();
    expect(activities.completeBatch).toHaveBeenCalledWith({ batchId, anchor: null });
  });

  it('marks the batch failed with the cause when signing is refused for good', async () => {
    const batchId = 'pb-000000000000000000000005';
    const activities = {
      ...mockActivities({
        ...batchStores(2),
        signTreeHeads: async () => {
          throw nonRetryable('KmsRejected', 'the KMS refused the issuer key');
        },
      }),
      ...mockActivities(fakeChainActivities(POLICY)),
    };
    const failure = await run(batchId, activities).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(ApplicationFailure);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'KmsRejected' });
    expect(activities.markBatchFailed).toHaveBeenCalledWith({ batchId, reason: 'the KMS refused the issuer key' });
    expect(activities.planAnchor).not.toHaveBeenCalled();
  });
});

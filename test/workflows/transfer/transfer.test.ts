import { WorkflowFailedError } from '@temporalio/client';
import { merkleProofs } from '../../../src/anchoring/merkle';
import { transferWorkflowId } from '../../../src/transfer/ids';
import { transferWorkflow } from '../../../workflows';
import type { TransferInput } from '../../../workflows/transfer/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { fakeChainActivities, hex64, nonRetryable, txidOfPlan } from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

function transferInput(uid: string): TransferInput {
  return {
    uid,
    headTxid: hex64(`head-${uid}`),
    newOwner: `new-owner-of-${uid}`,
    authorization: {
      kind: 'owner-signature',
      nonce: `nonce-${uid}`,
      expiresAt: '2030-01-01T00:00:00Z',
      pubKeyHex: '02'.padEnd(66, 'f'),
      signatureDerHex: '3045',
    },
  };
}

function transferActivities(seq: number) {
  return mockActivities({
    ...fakeChainActivities({ mode: 'single', minConfirmations: 2, pollSeconds: 60 }),
    persistPendingTransfer: async ({ request }) => ({ recordHash: hex64(`transfer-${request.uid}-${seq}`), seq, from: 'previous-owner' }),
    signTransferRecord: async () => undefined,
    markTransferAnchoring: async () => undefined,
    markTransferAnchored: async () => undefined,
    markTransferFailed: async () => undefined,
  });
}

describe('transferWorkflow', () => {
  const server = timeSkippingEnvForBlock();

  it('anchors the transfer record and moves the patch to its new owner', async () => {
    const input = transferInput('transfer-ok');
    const transferId = transferWorkflowId(input.uid, input.headTxid);
    const activities = transferActivities(3);
    const result = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(transferWorkflow, { taskQueue, workflowId: transferId, args: [input] }),
    );
    const recordHash = hex64(`transfer-${input.uid}-3`);
    const txid = txidOfPlan(activities.signTransaction.mock.calls[0]![0]);
    expect(result).toMatchObject({
      uid: input.uid,
      seq: 3,
      from: 'previous-owner',
      to: input.newOwner,
      recordHash,
      txid,
      proof: merkleProofs([recordHash])[0],
    });
    expect(activities.planAnchor).toHaveBeenCalledWith(
      expect.objectContaining({ label: `transfer 3 of ${input.uid}`, recordHashes: [recordHash] }),
    );
    expect(activities.signTransferRecord).toHaveBeenCalledWith({ transferId });
    expect(activities.markTransferAnchored).toHaveBeenCalledWith(expect.objectContaining({ transferId, txid }));
  });

  it('fails with the activity’s type and marks the transfer failed when the head has moved', async () => {
    const input = transferInput('transfer-stale');
    const transferId = transferWorkflowId(input.uid, input.headTxid);
    const activities = mockActivities({
      ...transferActivities(1),
      persistPendingTransfer: async () => {
        throw nonRetryable('StaleHead', 'the patch head moved');
      },
    });
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(transferWorkflow, { taskQueue, workflowId: transferId, args: [input] }),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'StaleHead', message: 'the patch head moved' });
    expect(activities.markTransferFailed).toHaveBeenCalledWith({ transferId, reason: 'the patch head moved' });
    expect(activities.signTransferRecord).not.toHaveBeenCalled();
  });
});

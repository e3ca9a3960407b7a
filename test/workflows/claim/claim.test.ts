import { CancelledFailure, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { transferWorkflowId } from '../../../src/transfer/ids';
import { claimWorkflow } from '../../../workflows';
import { approveClaimUpdate, claimStateQuery, type ClaimInput } from '../../../workflows/claim/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { fakeChainActivities, hex64, nonRetryable, txidOfPlan } from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const HOUR = 3_600_000;

describe('claimWorkflow', () => {
  const server = timeSkippingEnvForBlock();

  async function claimInput(uid: string): Promise<ClaimInput> {
    return {
      uid,
      customer: { address: `customer-of-${uid}`, pubKeyHex: '02'.padEnd(66, 'e') },
      nonce: `nonce-${uid}`,
      expiresAt: new Date((await server.env.currentTimeMs()) + HOUR).toISOString(),
      signatureDerHex: '3045',
    };
  }

  /** The head, transfer and anchoring activities of the child transfer, in single mode. */
  function transferActivities(uid: string) {
    return mockActivities({
      ...fakeChainActivities({ mode: 'single', minConfirmations: 1, pollSeconds: 60 }),
      currentHead: async () => ({ txid: hex64(`head-${uid}`), owner: 'merchant' }),
      persistPendingTransfer: async ({ request }) => ({ recordHash: hex64(`transfer-${request.uid}`), seq: 1, from: 'merchant' }),
      signTransferRecord: async () => undefined,
      markTransferAnchoring: async () => undefined,
      markTransferAnchored: async () => undefined,
      markTransferFailed: async () => undefined,
    });
  }

  it('expires on its timer when no merchant approves it, and starts no transfer', async () => {
    const uid = 'claim-expiring';
    const input = await claimInput(uid);
    const activities = transferActivities(uid);
    const state = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(claimWorkflow, { taskQueue, workflowId: `claim-${uid}`, args: [input] }),
    );
    expect(state).toMatchObject({ uid, status: 'expired', customer: input.customer.address });
    expect(await server.env.currentTimeMs()).toBeGreaterThanOrEqual(Date.parse(input.expiresAt));
    expect(activities.currentHead).not.toHaveBeenCalled();
  });

  it('on approval transfers the patch to the customer with a child transfer of the current head', async () => {
    const uid = 'claim-approved';
    const input = await claimInput(uid);
    const activities = transferActivities(uid);
    const { approved, state, second } = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(claimWorkflow, { taskQueue, workflowId: `claim-${uid}`, args: [input] });
      const approved = await handle.executeUpdate(approveClaimUpdate, { args: [{ approvedBy: 'merchant-7' }] });
      // A second approval is refused by the validator: the claim is no longer pending.
      const second = await handle.executeUpdate(approveClaimUpdate, { args: [{ approvedBy: 'merchant-8' }] }).catch((err: unknown) => err);
      return { approved, state: await handle.result(), second };
    });
    const headTxid = hex64(`head-${uid}`);
    expect(approved).toMatchObject({ status: 'approved', approvedBy: 'merchant-7' });
    expect(second).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(state).toMatchObject({
      status: 'completed',
      approvedBy: 'merchant-7',
      transferId: transferWorkflowId(uid, headTxid),
      txid: txidOfPlan(activities.signTransaction.mock.calls[0]![0]),
    });
    expect(activities.persistPendingTransfer).toHaveBeenCalledWith(
      expect.objectContaining({
        transferId: transferWorkflowId(uid, headTxid),
        request: expect.objectContaining({
          uid,
          headTxid,
          newOwner: input.customer.address,
          authorization: expect.objectContaining({
            kind: 'pos-claim',
            claimId: `claim-${uid}`,
            approvedBy: 'merchant-7',
            nonce: input.nonce,
          }),
        }),
      }),
    );
  });

  it('reports a failed transfer as a failed claim, the transfer recording its reason', async () => {
    const uid = 'claim-stale';
    const input = await claimInput(uid);
    const activities = mockActivities({
      ...transferActivities(uid),
      persistPendingTransfer: async () => {
        throw nonRetryable('StaleHead', 'the head moved');
      },
    });
    const state = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(claimWorkflow, { taskQueue, workflowId: `claim-${uid}`, args: [input] });
      await handle.executeUpdate(approveClaimUpdate, { args: [{ approvedBy: 'merchant-7' }] });
      return handle.result();
    });
    expect(state.status).toBe('failed');
    expect(state.error).toEqual(expect.any(String));
    expect(activities.markTransferFailed).toHaveBeenCalledWith(expect.objectContaining({ reason: 'the head moved' }));
  });

  it('ends cancelled when cancelled while pending, without transferring', async () => {
    const uid = 'claim-cancelled';
    const activities = transferActivities(uid);
    const { failure, pending } = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(claimWorkflow, {
        taskQueue,
        workflowId: `claim-${uid}`,
        args: [await claimInput(uid)],
      });
      const pending = await handle.query(claimStateQuery);
      await handle.cancel();
      return { pending, failure: await handle.result().catch((err: unknown) => err) };
    });
    expect(pending.status).toBe('pending');
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(activities.currentHead).not.toHaveBeenCalled();
  });
});

import {
  condition,
  executeChild,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { ClaimActivities } from '../../activities/claim/claimActivities';
import { transferWorkflowId } from '../../src/transfer/ids';
import { failureMessage } from '../shared/failures';
import { PATCH_UID, TXID, WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import { transferWorkflow } from '../transfer/transfer';
import { approveClaimUpdate, claimStateQuery, type ClaimApproval, type ClaimInput, type ClaimState } from './shared';

const claim = proxyActivities<ClaimActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
});

/**
 * A point-of-sale claim (id `claim-<uid>-<nonce>`): the customer's signed intent waits for a merchant's approval
 * until it expires (a durable timer); once approved, the patch is transferred to the customer by a child
 * TransferWorkflow of the head at that moment.
 */
export async function claimWorkflow(input: ClaimInput): Promise<ClaimState> {
  const state: ClaimState = { uid: input.uid, customer: input.customer.address, status: 'pending', expiresAt: input.expiresAt };
  let approval: ClaimApproval | undefined;
  setHandler(claimStateQuery, () => state);
  setHandler(
    approveClaimUpdate,
    (request) => {
      approval = request;
      state.status = 'approved';
      state.approvedBy = request.approvedBy;
      return state;
    },
    {
      validator: (_request: ClaimApproval) => {
        if (state.status !== 'pending') throw new Error(`the claim is ${state.status}`);
        if (Date.now() >= Date.parse(input.expiresAt)) throw new Error('the claim has expired');
      },
    },
  );
  upsertSearchAttributes([
    { key: PATCH_UID, value: input.uid },
    { key: WORKFLOW_KIND, value: 'claim' },
    { key: WORKFLOW_STATUS, value: 'pending' },
  ]);

  const approved = await condition(() => approval !== undefined, Math.max(Date.parse(input.expiresAt) - Date.now(), 1));
  if (!approved) return finish(state, 'expired');
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'approved' }]);

  const head = await claim.currentHead({ uid: input.uid });
  state.transferId = transferWorkflowId(input.uid, head.txid);
  try {
    const transfer = await executeChild(transferWorkflow, {
      workflowId: state.transferId,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [
        {
          uid: input.uid,
          headTxid: head.txid,
          newOwner: input.customer.address,
          authorization: {
            kind: 'pos-claim',
            claimId: workflowInfo().workflowId,
            approvedBy: approval!.approvedBy,
            nonce: input.nonce,
            expiresAt: input.expiresAt,
            customerPubKeyHex: input.customer.pubKeyHex,
            customerSignatureDerHex: input.signatureDerHex,
          },
        },
      ],
    });
    state.txid = transfer.txid;
    upsertSearchAttributes([{ key: TXID, value: transfer.txid }]);
    return finish(state, 'completed');
  } catch (err) {
    state.error = failureMessage(err);
    return finish(state, 'failed');
  }
}

function finish(state: ClaimState, status: 'completed' | 'expired' | 'failed'): ClaimState {
  state.status = status;
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: status }]);
  upsertMemo({ summary: { uid: state.uid, status, ...(state.txid && { txid: state.txid }) } });
  return state;
}

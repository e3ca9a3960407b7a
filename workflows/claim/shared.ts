import { defineQuery, defineUpdate } from '@temporalio/workflow';

/** Messages and types of the point-of-sale claim workflow, shared by the workflow and its callers. */

export interface ClaimInput {
  uid: string;
  customer: { address: string; pubKeyHex: string };
  nonce: string;
  /** When the intent lapses unless a merchant approved it: the workflow's timer. */
  expiresAt: string;
  signatureDerHex: string;
}

export type ClaimStatus = 'pending' | 'approved' | 'completed' | 'expired' | 'failed';

export interface ClaimState {
  uid: string;
  customer: string;
  status: ClaimStatus;
  expiresAt: string;
  approvedBy?: string;
  transferId?: string;
  txid?: string;
  error?: string;
}

export interface ClaimApproval {
  approvedBy: string;
}

export const claimStateQuery = defineQuery<ClaimState>('claimState');
/** Validated: only a pending, unexpired claim can be approved; the answer is the claim's state after approval. */
export const approveClaimUpdate = defineUpdate<ClaimState, [ClaimApproval]>('approveClaim');

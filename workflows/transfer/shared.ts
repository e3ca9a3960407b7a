import { defineQuery } from '@temporalio/workflow';
import type { MerkleProof } from '../../src/anchoring/merkle';
import type { TransferRequest } from '../../src/transfer/record';

/** Messages and types of the transfer workflow, shared by the workflow, its activities and its callers. */

export type TransferInput = TransferRequest;

export type TransferStep = 'persisting' | 'signing' | 'anchoring' | 'confirming' | 'anchored' | 'failed';

export interface TransferProgress {
  step: TransferStep;
  seq?: number;
  recordHash?: string;
  txid?: string;
  confirmations?: number;
  lastError?: string;
}

export interface TransferResult {
  uid: string;
  seq: number;
  from: string;
  to: string;
  recordHash: string;
  txid: string;
  vout: number;
  proof: MerkleProof;
  confirmations: number;
}

export const transferProgressQuery = defineQuery<TransferProgress>('transferProgress');

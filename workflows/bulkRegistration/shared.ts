import { defineQuery } from '@temporalio/workflow';

/** Messages and types of the bulk-registration workflow, shared by the workflow, its activities and its callers. */

/** Ids and counts only: the items stay in MongoDB. */
export interface BulkRegistrationInput {
  batchId: string;
}

export type BulkRegistrationStep = 'sealing' | 'signing' | 'waiting-for-funds' | 'anchoring' | 'confirming' | 'completed' | 'failed';

export interface BulkRegistrationProgress {
  step: BulkRegistrationStep;
  chunks: number;
  chunksSealed: number;
  /** Records registered so far (their uid was free) and items found already registered. */
  registered: number;
  duplicates: number;
  txid?: string;
  confirmations?: number;
  lastError?: string;
}

export interface BulkRegistrationResult {
  batchId: string;
  registered: number;
  duplicates: number;
  txid: string | null;
  confirmations: number;
}

/** What sealing a chunk found: how many records it registered, how many were duplicates, and its tree head's hash. */
export interface SealedChunk {
  chunk: number;
  size: number;
  duplicates: number;
  treeHeadHash: string | null;
}

export const bulkRegistrationProgressQuery = defineQuery<BulkRegistrationProgress>('bulkRegistrationProgress');

import { defineQuery } from '@temporalio/workflow';
import type { MerkleProof } from '../../src/anchoring/merkle';
import type { RegistrationRequest } from '../../src/registration/record';
import type { Actor } from '../../src/tenancy/apiKeys';

/** Messages and types of the registration workflow, shared by the workflow, its activities and its callers. */

export interface RegistrationInput {
  request: RegistrationRequest;
  /** sha256 of the request body: a retry with the same body and Idempotency-Key gets the same answer. */
  requestHash: string;
  idempotencyKey?: string;
  /** The API key that asked (absent in runs started before tenancy: the default tenant's). */
  actor?: Actor;
}

export type RegistrationStep = 'persisting' | 'signing' | 'anchoring' | 'confirming' | 'anchored' | 'failed';

export interface RegistrationProgress {
  step: RegistrationStep;
  recordHash?: string;
  txid?: string;
  confirmations?: number;
  lastError?: string;
}

export interface RegistrationResult {
  uid: string;
  recordHash: string;
  txid: string;
  vout: number;
  proof: MerkleProof;
  confirmations: number;
}

export const registrationProgressQuery = defineQuery<RegistrationProgress>('registrationProgress');

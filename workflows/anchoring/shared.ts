import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { MerkleProof } from '../../src/anchoring/merkle';

/** Messages and types of anchoring, shared by the batcher, the batch workflow, the records' workflows and callers. */

/** A record waiting for an anchor: its workflow is told the outcome by `anchorAssignedSignal`. */
export interface AnchorRequest {
  /** What the record is, unique across records: `registration:<uid>` or `transfer:<uid>:<seq>`. */
  key: string;
  recordHash: string;
  /** The workflow to signal with the outcome. */
  subjectWorkflowId: string;
  /** The requesting worker's batch limits: a running batcher adopts them, so a configuration change reaches it. */
  limits?: { maxRecords: number; maxWaitSeconds: number };
  /**
   * The batch settles this registration itself: it writes the record's anchoring and anchored state with bulk
   * writes for all its records and signals `anchorSettled` once, instead of `anchorQueued`, `anchorAssigned` and
   * `anchorConfirmed` and the record's own writes. `uid` is the registration's patch.
   */
  settle?: { kind: 'registration'; uid: string };
}

/** The end of a settled record's anchor: anchored with these confirmations (its state already written), or failed. */
export type AnchorSettlement =
  | { ok: true; txid: string; vout: number; proof: MerkleProof; blockHeight: number | null; confirmations: number }
  | { ok: false; reason: string; type: string };

export type AnchorAssignment =
  | {
      ok: true;
      txid: string;
      vout: number;
      proof: MerkleProof;
      batchWorkflowId: string;
      /** The batch will signal `anchorConfirmed` once its transaction has the confirmations: the record need not poll. */
      confirmationsSignalled?: true;
    }
  | { ok: false; reason: string; type: string };

/** An anchor transaction reached the confirmations the policy asks for, counted once for all its records. */
export interface AnchorConfirmation {
  txid: string;
  confirmations: number;
  blockHeight: number | null;
}

export interface AnchorBatcherInput {
  maxRecords: number;
  maxWaitSeconds: number;
  /** Carried over continue-as-new: requests not yet in a batch, and keys batched recently (for de-duplication). */
  pending?: AnchorRequest[];
  recentKeys?: [key: string, batchedAtMs: number][];
}

export interface AnchorBatcherState {
  pending: number;
  batchesThisRun: number;
  lastBatchWorkflowId?: string;
  /** The batch cut last, until its transaction is out: records arriving meanwhile gather for the next cut. */
  inFlight?: string;
}

export interface AnchorBatchInput {
  records: AnchorRequest[];
  /** The batcher that cut the batch: told once the transaction is out (or the batch failed), so it cuts the next. */
  batcherWorkflowId?: string;
}

export interface AnchorBatchResult {
  txid: string;
  count: number;
  root: string;
  fee: number;
  feePerRecord: number;
  confirmations: number;
}

export interface AnchoringPolicy {
  mode: 'batch' | 'single';
  minConfirmations: number;
  pollSeconds: number;
}

export const anchorRequestSignal = defineSignal<[AnchorRequest]>('anchorRequest');
export const anchorAssignedSignal = defineSignal<[AnchorAssignment]>('anchorAssigned');
export const anchorConfirmedSignal = defineSignal<[AnchorConfirmation]>('anchorConfirmed');
/** A batch tells its records it holds them: they stop asking the batcher and wait for it, however long it waits for funds. */
export const anchorQueuedSignal = defineSignal<[{ batchWorkflowId: string }]>('anchorQueued');
/** A batch settled a record that asked it to (`AnchorRequest.settle`). */
export const anchorSettledSignal = defineSignal<[AnchorSettlement]>('anchorSettled');
/** Whether a batch holds the record of this key: a settled record that heard nothing for long asks the open batches. */
export const anchorBatchHoldsQuery = defineQuery<boolean, [string]>('anchorBatchHolds');
/** A batch's transaction is in the mempool, or the batch failed: the batcher's next cut need not wait. */
export const anchorBatchDoneSignal = defineSignal<[{ batchWorkflowId: string }]>('anchorBatchDone');
export const anchorBatcherStateQuery = defineQuery<AnchorBatcherState>('anchorBatcherState');

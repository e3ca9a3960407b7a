import { defineQuery } from '@temporalio/workflow';
import type { PoolSettings } from '../../src/config';

/**
 * Messages and types of the pool workflows (top-up, sweep, sync, reconcile), shared by the workflows, their
 * activities and their callers (API, CLI, schedules). Dependency-free apart from the query definitions.
 */

export type PoolTrigger = 'api' | 'cli' | 'schedule' | 'test';

export interface PoolAccount {
  keyIdentifier: string;
  address: string;
  lockingScriptHex: string;
}

export interface PoolAccounts {
  funding: PoolAccount;
  change: PoolAccount;
  network: 'main' | 'test';
}

/** Settings as one run used them; read afresh from the settings collection at the start of every run. */
export type PoolSettingsSnapshot = PoolSettings;

export interface SyncReport {
  chainHeight: number;
  accounts: { keyIdentifier: string; address: string; listed: number; added: number; markedSpent: number; dropped: number }[];
}

export interface TopUpInput {
  requestedBy: PoolTrigger;
  dryRun?: boolean;
}

export interface SpendSummary {
  txid: string;
  fee: number;
  sizeBytes: number;
  inputs: number;
  outputs: number;
  confirmations: number;
  /** The block of the last confirmation poll (absent from reports of runs from before it was kept). */
  blockHeight?: number | null;
}

export interface TopUpReport {
  outcome: 'skipped' | 'dry_run' | 'completed';
  dryRun: boolean;
  requestedBy: PoolTrigger;
  reason?: string;
  spendableBefore: number;
  target: number;
  /** Outputs the split creates (or would create, in a dry run). */
  outputCount: number;
  outputSats: number;
  estimatedFee?: number;
  requiredSats?: number;
  /** Dry runs: whether the funding address holds enough confirmed, unreserved satoshis. */
  fundsAvailableSats?: number;
  sufficientFunds?: boolean;
  transaction?: SpendSummary;
  settings: PoolSettingsSnapshot;
}

export interface SweepInput {
  requestedBy: PoolTrigger;
  changeAddress: string;
  /** KMS key identifier of the change address; never a WIF. */
  changeKeyId: string;
  destinationAddress: string;
  dryRun?: boolean;
}

export interface SweepReport {
  outcome: 'skipped' | 'dry_run' | 'completed';
  dryRun: boolean;
  requestedBy: PoolTrigger;
  reason?: string;
  changeAddress: string;
  destinationAddress: string;
  dustOnly: boolean;
  eligible: number;
  inputCount: number;
  totalSats: number;
  fee: number;
  outputSats: number;
  /** Outputs left for a later run because of SWEEP_MAX_INPUTS. */
  remaining: number;
  transaction?: SpendSummary;
}

export interface ReconcileReport {
  checked: number;
  released: number;
  ownerRunning: number;
  spentOnChain: number;
  alreadySettled: number;
}

export interface SyncInput {
  requestedBy: PoolTrigger;
}

export type PoolOperationStep =
  | 'starting'
  | 'syncing'
  | 'planning'
  | 'reserving'
  | 'signing'
  | 'broadcasting'
  | 'confirming'
  | 'resyncing'
  | 'waiting-for-batch'
  | 'waiting-for-funds'
  | 'done';

export interface PoolOperationProgress {
  step: PoolOperationStep;
  attempt: number;
  txid?: string;
  confirmations?: number;
  lastError?: string;
}

export const poolProgressQuery = defineQuery<PoolOperationProgress>('poolProgress');

/** What a schedule asks for; the scheduled workflow starts the operation under its fixed id. */
export type ScheduledPoolOperation =
  | { operation: 'top-up'; workflowId: string; input: TopUpInput }
  | { operation: 'sweep'; workflowId: string; input: SweepInput }
  | { operation: 'reconcile'; workflowId: string };

export interface ScheduledPoolRunReport {
  operation: ScheduledPoolOperation['operation'];
  workflowId: string;
  /** `already_running`: a run (manual or earlier) held the id, so this tick started nothing. */
  outcome: 'completed' | 'already_running';
  runId?: string;
  result?: TopUpReport | SweepReport | ReconcileReport;
}

/** Failure types of the pool activities, beyond the chain ones in activities/chain. */
export const POOL_FAILURES = {
  insufficientFunds: 'InsufficientFunds',
  misconfigured: 'PoolMisconfigured',
  inputsUnavailable: 'PoolInputsUnavailable',
} as const;

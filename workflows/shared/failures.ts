import { ActivityFailure, ApplicationFailure, upsertSearchAttributes } from '@temporalio/workflow';
import { WORKFLOW_STATUS } from './searchAttributes';

/**
 * Failure types of the chain activities (activities/chain/chainActivities.ts); workflows branch on these, and only
 * these. They live here so workflow code, which may not import the activity module, names the same strings.
 */
export const CHAIN_FAILURES = {
  insufficientFunds: 'InsufficientFunds',
  invalidPlan: 'InvalidTransactionPlan',
  signingFailed: 'SigningFailed',
  kmsUnavailable: 'KmsUnavailable',
  kmsRejected: 'KmsRejected',
  missingInputs: 'MissingInputs',
  mempoolConflict: 'MempoolConflict',
  broadcastRejected: 'BroadcastRejected',
  chainUnavailable: 'ChainServiceUnavailable',
  chainReadRejected: 'ChainReadRejected',
} as const;

/** The message an operator needs: an activity's own failure rather than "Activity task failed". */
export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** The type of an activity's own ApplicationFailure, if that is what failed. */
export function failureType(err: unknown): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
  return undefined;
}

/** The first detail of an activity's own ApplicationFailure (e.g. the amounts of InsufficientFunds), if any. */
export function failureDetails(err: unknown): unknown {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.details?.[0];
  return undefined;
}

/**
 * Runs a workflow's body; on failure marks the run failed in its search attributes and surfaces an activity's own
 * failure (e.g. InsufficientFunds with its amounts) as the workflow's failure, so operators see the cause at the top
 * of the Web UI instead of "activity task failed".
 */
export async function withFailureStatus<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: 'failed' }]);
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
      const cause = err.cause;
      throw ApplicationFailure.create({
        message: cause.message,
        ...(cause.type && { type: cause.type }),
        nonRetryable: true,
        ...(cause.details && { details: cause.details }),
        cause: err,
      });
    }
    throw err;
  }
}

/** The workflow gives up after the node reported its inputs missing `rounds` times, each after a resync. */
export function inputsMissingFailure(what: string, rounds: number): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${what} inputs were reported missing ${rounds} times`, CHAIN_FAILURES.missingInputs);
}

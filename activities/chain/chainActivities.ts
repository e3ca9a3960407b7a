import { ApplicationFailure } from '@temporalio/activity';
import { Transaction } from '@bsv/sdk';
import type { Connection } from 'mongoose';
import { parseAnchorScript } from '../../src/anchoring/anchorScript';
import { trackAnchorTx } from '../../src/chainFollower/localChain';
import type { Network } from '../../src/chain/addresses';
import { signTransaction, SigningError, type SignedTransaction } from '../../src/chain/signing';
import {
  buildTransaction,
  InsufficientFundsError,
  InvalidTransactionPlanError,
  type BuildTransactionInput,
} from '../../src/chain/transactions';
import type { KmsClient } from '../../src/kms/client';
import { isKmsError } from '../../src/kms/errors';
import type { Logger } from '../../src/logging/logger';
import type { Metrics } from '../../src/metrics';
import type { WocClient } from '../../src/woc/client';
import { WocError } from '../../src/woc/errors';
import { CHAIN_FAILURES } from '../../workflows/shared/failures';
import { withHeartbeats } from '../shared/heartbeat';

export interface ChainActivityDeps {
  kms: KmsClient;
  woc: WocClient;
  logger: Logger;
  network: Network;
  metrics?: Metrics;
  /** Where the bytes of a broadcast anchor tx are kept for proof bundles (the chain follower's anchor_txs). */
  mongo?: Connection;
}

export { CHAIN_FAILURES };

export interface BroadcastOutcome {
  txid: string;
  /** The node already had it: a retried broadcast after a lost answer lands here. */
  alreadyKnown: boolean;
}

/**
 * Activities at the chain borders: KMS signing and WhatsOnChain. Transport trouble is retryable (Temporal retries
 * with the workflow's policy); what retrying cannot fix is non-retryable with a type the workflow can act on.
 */
export function createChainActivities({ kms, woc, logger, network, metrics, mongo }: ChainActivityDeps) {
  return {
    /** Builds and signs in one step: the signature covers exactly the plan, so a retry rebuilds identical bytes. */
    async signTransaction(plan: Omit<BuildTransactionInput, 'network'>): Promise<SignedTransaction> {
      try {
        const unsigned = buildTransaction({ ...plan, network });
        return await withHeartbeats({ step: 'signing', inputs: plan.inputs.length }, () => signTransaction(unsigned, kms));
      } catch (err) {
        throw chainFailure(err);
      }
    },

    async broadcastTransaction(signed: Pick<SignedTransaction, 'txid' | 'hex'>): Promise<BroadcastOutcome> {
      let result;
      try {
        result = await withHeartbeats({ step: 'broadcasting', txid: signed.txid }, () => woc.broadcast(signed.hex));
      } catch (err) {
        throw chainFailure(err);
      }
      logger.onChain.info('broadcast', { txid: signed.txid, outcome: result.outcome, alreadyKnown: result.alreadyKnown });
      metrics?.broadcasts.inc({ outcome: result.outcome });
      if (result.outcome !== 'success') metrics?.broadcastRejections.inc({ reason: result.outcome });
      switch (result.outcome) {
        case 'success':
          // Kept before the workflow hears of the tx: a proof bundle's BEEF is built from these bytes, not fetched back.
          if (mongo && carriesAnchor(signed.hex)) await trackAnchorTx(mongo, network, signed.txid, signed.hex);
          return { txid: signed.txid, alreadyKnown: result.alreadyKnown };
        case 'retryable':
          throw ApplicationFailure.retryable(
            `broadcast of ${signed.txid} got no verdict: ${result.reason ?? 'no answer'}`,
            CHAIN_FAILURES.chainUnavailable,
          );
        case 'missing_inputs':
          throw ApplicationFailure.nonRetryable(`Missing inputs for ${signed.txid}`, CHAIN_FAILURES.missingInputs, { txid: signed.txid });
        case 'mempool_conflict':
          throw ApplicationFailure.nonRetryable(`txn-mempool-conflict for ${signed.txid}`, CHAIN_FAILURES.mempoolConflict, {
            txid: signed.txid,
          });
        default:
          throw ApplicationFailure.nonRetryable(
            `broadcast of ${signed.txid} rejected (${result.outcome}): ${result.reason ?? ''}`,
            CHAIN_FAILURES.broadcastRejected,
            {
              txid: signed.txid,
              outcome: result.outcome,
            },
          );
      }
    },

    /** Confirmations of a tx, or null while the service does not know it. */
    async transactionConfirmations(txid: string): Promise<number | null> {
      try {
        const tx = await withHeartbeats({ step: 'reading', txid }, () => woc.getTx(txid));
        return tx ? tx.confirmations : null;
      } catch (err) {
        throw chainFailure(err, 'read');
      }
    },
  };
}

export type ChainActivities = ReturnType<typeof createChainActivities>;

/** Whether a signed tx has a PatchProof anchor output: only those are kept; pool top-ups and sweeps are not. */
function carriesAnchor(rawHex: string): boolean {
  return Transaction.fromHex(rawHex).outputs.some((output) => parseAnchorScript(output.lockingScript.toHex()) !== null);
}

/**
 * Maps errors from the chain modules to ApplicationFailures with a stable type and the right retryability. A
 * WhatsOnChain refusal is `BroadcastRejected` for a broadcast and `ChainReadRejected` for a read.
 */
export function chainFailure(err: unknown, operation: 'write' | 'read' = 'write'): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof InsufficientFundsError) {
    return ApplicationFailure.nonRetryable(err.message, CHAIN_FAILURES.insufficientFunds, { needed: err.needed, available: err.available });
  }
  // RangeError: a fee rate or raw transaction that is not a number or not hex; as unfixable by retrying as a bad plan.
  if (err instanceof InvalidTransactionPlanError || err instanceof RangeError) {
    return ApplicationFailure.nonRetryable(err.message, CHAIN_FAILURES.invalidPlan);
  }
  if (err instanceof SigningError) return ApplicationFailure.nonRetryable(err.message, CHAIN_FAILURES.signingFailed);
  if (isKmsError(err)) {
    return err.retryable
      ? ApplicationFailure.retryable(err.message, CHAIN_FAILURES.kmsUnavailable, { kind: err.kind })
      : ApplicationFailure.nonRetryable(err.message, CHAIN_FAILURES.kmsRejected, { kind: err.kind });
  }
  if (err instanceof WocError) {
    if (err.retryable) return ApplicationFailure.retryable(err.message, CHAIN_FAILURES.chainUnavailable, { kind: err.kind });
    const type = operation === 'read' ? CHAIN_FAILURES.chainReadRejected : CHAIN_FAILURES.broadcastRejected;
    return ApplicationFailure.nonRetryable(err.message, type, { kind: err.kind });
  }
  // Anything else is a transport or service hiccup we did not foresee; the workflow's retry policy bounds it.
  const message = err instanceof Error ? err.message : String(err);
  return ApplicationFailure.retryable(message, operation === 'read' ? CHAIN_FAILURES.chainUnavailable : 'Unexpected');
}

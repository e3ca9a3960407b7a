import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { anchorPushes } from '../../src/anchoring/anchorScript';
import { ANCHOR_BATCHER_WORKFLOW_ID } from '../../src/anchoring/ids';
import { merkleProofs, type MerkleProof } from '../../src/anchoring/merkle';
import type { SpendableOutput } from '../../src/chain/transactions';
import type { AppConfig } from '../../src/config';
import { recordAnchorPlanned, type Metrics } from '../../src/metrics';
import { resolvePoolAccounts } from '../../src/pool/accounts';
import type { Keyring } from '../../src/rotation/keyring';
import { minWorthwhileChange } from '../../src/chain/fees';
import { p2pkhTransactionFee } from '../../src/pool/planning';
import { createReservations } from '../../src/pool/reservations';
import { readPoolSettings } from '../../src/pool/settings';
import {
  anchorBatchHoldsQuery,
  anchorRequestSignal,
  type AnchorBatcherInput,
  type AnchoringPolicy,
  type AnchorRequest,
} from '../../workflows/anchoring/shared';
import { patchModel } from '../../src/registration/models';
import { POOL_FAILURES } from '../../workflows/pool/shared';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import type { PoolSpendingDeps } from '../shared/deps';

export interface AnchoringActivityDeps extends PoolSpendingDeps {
  anchoring: AppConfig['anchoring'];
  temporal?: Client;
  metrics?: Metrics;
  /** Key settings: after a funding-key rotation anchors spend, and pay change to, the new key. */
  keys?: Keyring;
}

/** Bytes an anchor's data output adds beyond a P2PKH output: tag, version, root and count pushes. */
const ANCHOR_OUTPUT_EXTRA_BYTES = 70;

export interface AnchorPlan {
  plan: {
    inputs: SpendableOutput[];
    outputs: { kind: 'data'; pushes: number[][] }[];
    changeAddress: string;
    minChangeSats: number;
    feeRateSatPerKb: number;
  };
  /** One proof per record hash, in the order given. */
  proofs: MerkleProof[];
  change: { keyIdentifier: string; lockingScriptHex: string };
  minConfirmations: number;
  pollSeconds: number;
}

/** Activities shared by both anchoring modes; each is idempotent (keyed reservations, reads, a de-duplicated signal). */
export function createAnchoringActivities(deps: AnchoringActivityDeps) {
  const reservations = createReservations(deps.mongo);

  return {
    /** The mode and confirmation policy, read once per workflow so a configuration change never splits a run. */
    async anchoringPolicy(): Promise<AnchoringPolicy> {
      const settings = await readPoolSettings(deps.mongo, deps.pool.defaults);
      return { mode: deps.anchoring.mode, minConfirmations: deps.anchoring.confirmations, pollSeconds: settings.confirmationPollSeconds };
    },

    /**
     * Reserves one pool output for an anchor of these record hashes (one slot per round, so a retried activity
     * gets the same output) and returns the transaction plan: one data output committing to the Merkle root and
     * count, change back to the pool, and each record's proof.
     */
    async planAnchor(input: {
      label: string;
      recordHashes: string[];
      owner: string;
      round: number;
      excludeUtxoIds?: string[];
    }): Promise<AnchorPlan> {
      const settings = await readPoolSettings(deps.mongo, deps.pool.defaults);
      const accounts = await resolvePoolAccounts(
        deps.keys ? await deps.keys.livePoolConfig(deps.pool) : deps.pool,
        deps.kms,
        deps.network,
        false,
      );
      const proofs = merkleProofs(input.recordHashes);
      const root = proofs[0]!.root;
      const fee = p2pkhTransactionFee(1, 2, settings.feePerKb) + Math.ceil((ANCHOR_OUTPUT_EXTRA_BYTES * settings.feePerKb) / 1000);
      const chainHeight = (await deps.woc.getChainInfo()).blocks;
      const reserved = await reservations.reserve({
        owner: input.owner,
        slot: `anchor-input-${input.round}`,
        keyIdentifier: accounts.funding.keyIdentifier,
        lockingScriptHex: accounts.funding.lockingScriptHex,
        minSatoshis: fee + 1,
        minConfirmations: settings.minConfirmations,
        chainHeight,
        ...(input.excludeUtxoIds && input.excludeUtxoIds.length > 0 && { excludeUtxoIds: input.excludeUtxoIds }),
      });
      if (!reserved) {
        deps.metrics?.poolOperationFailures.inc({ operation: 'anchor', reason: 'insufficient_funds' });
        throw ApplicationFailure.nonRetryable(
          `insufficient funds: no confirmed pool output of at least ${fee + 1} sat to anchor ${input.label}; top the pool up`,
          POOL_FAILURES.insufficientFunds,
          // An output frees up when a change output confirms, which the pool learns at its confirmation poll.
          { needed: fee + 1, retryAfterSeconds: settings.confirmationPollSeconds },
        );
      }
      recordAnchorPlanned(deps.metrics, { records: input.recordHashes.length, feeSatoshis: fee });
      return {
        plan: {
          inputs: [
            {
              txid: reserved.txid,
              vout: reserved.vout,
              satoshis: reserved.satoshis,
              lockingScriptHex: reserved.lockingScriptHex,
              keyIdentifier: reserved.keyIdentifier,
            },
          ],
          outputs: [{ kind: 'data', pushes: anchorPushes({ root, count: input.recordHashes.length }) }],
          changeAddress: accounts.change.address,
          minChangeSats: minWorthwhileChange(settings.feePerKb),
          feeRateSatPerKb: settings.feePerKb,
        },
        proofs,
        change: { keyIdentifier: accounts.change.keyIdentifier, lockingScriptHex: accounts.change.lockingScriptHex },
        minConfirmations: deps.anchoring.confirmations,
        pollSeconds: settings.confirmationPollSeconds,
      };
    },

    /** Whether an anchor batch still runs: a record whose batch closed without answering asks the batcher again. */
    async anchorBatchOpen(input: { workflowId: string }): Promise<boolean> {
      try {
        return (await requireTemporal(deps).workflow.getHandle(input.workflowId).describe()).status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },

    /**
     * Hands a record to the anchor batcher, starting the batcher if none runs (signal-with-start). Safe to repeat:
     * the batcher ignores a key it holds or batched recently, and the record's workflow keeps the first answer.
     */
    async requestBatchAnchor(request: AnchorRequest): Promise<void> {
      await sendToAnchorBatcher(deps, request);
    },

    /**
     * Where a settled record stands when its batch has said nothing for long: anchored (written by its batch),
     * held by an open batch or the batcher (wait on), broadcast by a batch that closed without settling it
     * (terminated: the record counts its confirmations itself), or lost (ask the batcher again).
     */
    async settledRecordState(input: { key: string; uid: string }): Promise<SettledRecordState> {
      const patch = await patchModel(deps.mongo).findById(input.uid, { status: 1, anchor: 1 }).lean();
      const anchor = patch?.anchor?.proof ? { txid: patch.anchor.txid, vout: patch.anchor.vout, proof: patch.anchor.proof } : null;
      if (patch?.status === 'anchored' && anchor) return { state: 'anchored', ...anchor };
      if (await heldByOpenBatch(requireTemporal(deps), input.key)) return { state: 'held' };
      if (patch?.status === 'anchoring' && anchor) return { state: 'broadcast', ...anchor };
      return { state: 'lost' };
    },
  };
}

export type SettledRecordState =
  { state: 'anchored' | 'broadcast'; txid: string; vout: number; proof: MerkleProof } | { state: 'held' } | { state: 'lost' };

function requireTemporal(deps: Pick<AnchoringActivityDeps, 'temporal'>): Client {
  if (!deps.temporal) throw ApplicationFailure.nonRetryable('batch anchoring needs a Temporal client', POOL_FAILURES.misconfigured);
  return deps.temporal;
}

/**
 * Signals a record to the anchor batcher, starting it if none runs. The limits travel with the request so a running
 * batcher adopts a changed configuration; in single mode every batch is one record (one transaction per record).
 */
export async function sendToAnchorBatcher(
  deps: Pick<AnchoringActivityDeps, 'temporal' | 'anchoring'>,
  request: AnchorRequest,
): Promise<void> {
  const input: AnchorBatcherInput = {
    maxRecords: deps.anchoring.mode === 'single' ? 1 : deps.anchoring.batchMaxRecords,
    maxWaitSeconds: deps.anchoring.batchMaxWaitSeconds,
  };
  await requireTemporal(deps).workflow.signalWithStart('anchorBatcherWorkflow', {
    workflowId: ANCHOR_BATCHER_WORKFLOW_ID,
    taskQueue: TASK_QUEUES.main,
    args: [input],
    signal: anchorRequestSignal,
    signalArgs: [{ ...request, limits: { maxRecords: input.maxRecords, maxWaitSeconds: input.maxWaitSeconds } }],
  });
}

/** Whether an open batch holds the key: asking the batcher again would anchor it twice (the batcher ignores keys it holds). */
async function heldByOpenBatch(temporal: Client, key: string): Promise<boolean> {
  // Few batches are open at a time (one per cut, until its transaction confirms).
  for await (const batch of temporal.workflow.list({ query: "WorkflowType = 'anchorBatchWorkflow' AND ExecutionStatus = 'Running'" })) {
    const holds = await temporal.workflow
      .getHandle(batch.workflowId, batch.runId)
      .query(anchorBatchHoldsQuery, key)
      .catch(() => false);
    if (holds) return true;
  }
  return false;
}

export type AnchoringActivities = ReturnType<typeof createAnchoringActivities>;

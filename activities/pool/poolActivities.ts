import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Model } from 'mongoose';
import { p2pkhOutputScript, type SpendableOutput } from '../../src/chain/transactions';
import type { PoolSettings } from '../../src/config';
import { isKmsError } from '../../src/kms/errors';
import type { Metrics } from '../../src/metrics';
import { PoolMisconfiguredError, resolvePoolAccounts } from '../../src/pool/accounts';
import { parseReservationOwner } from '../../src/pool/ids';
import { outpointId, utxoModel, type UtxoDocument } from '../../src/pool/models';
import { planSweep, planTopUp, splitFundsNeeded, sweepAmounts, type SweepPlan, type TopUpPlan } from '../../src/pool/planning';
import { confirmedFilter, createReservations, livePoolTotals, type Reservations } from '../../src/pool/reservations';
import { readPoolSettings } from '../../src/pool/settings';
import type { Keyring } from '../../src/rotation/keyring';
import { CHAIN_FAILURES, chainFailure } from '../chain/chainActivities';
import {
  POOL_FAILURES,
  type PoolAccount,
  type PoolAccounts,
  type ReconcileReport,
  type SweepInput,
  type SyncReport,
} from '../../workflows/pool/shared';
import type { PoolSpendingDeps } from '../shared/deps';

export interface PoolActivityDeps extends PoolSpendingDeps {
  /** Needed by the reconciler to ask whether a reservation's workflow has closed. */
  temporal?: Client;
  metrics?: Metrics;
  /** Key settings: after a funding-key rotation the pool signs with, and pays change to, the new key. */
  keys?: Keyring;
}

/** Most inputs a top-up gathers when no single output covers the split. */
const MAX_SPLIT_INPUTS = 50;
/** Syncs in a row that must find neither an output nor its transaction before the output is retired. */
const UNSEEN_SYNCS_BEFORE_RETIRING = 3;
/** Outputs the sync checks one by one per run when they vanished from the unspent list. */
const MAX_VANISHED_CHECKS = 200;

/** What the pool activities share: their dependencies, the utxo collection and the reservations on it. */
interface PoolContext extends PoolActivityDeps {
  utxos: Model<UtxoDocument>;
  reservations: Reservations;
}

/**
 * Activities of the pool workflows. Each is idempotent: reservations are keyed by owner and slot, records by
 * outpoint, and chain reads change nothing.
 */
export function createPoolActivities(deps: PoolActivityDeps) {
  const { mongo, kms, woc, logger, network, pool, keys } = deps;
  const context: PoolContext = { ...deps, utxos: utxoModel(mongo), reservations: createReservations(mongo) };
  const { utxos, reservations } = context;

  return {
    /** The pool's addresses. `verify` checks configured addresses against the KMS keys (skipped by dry runs). */
    async resolvePoolAccounts(options: { verify: boolean }): Promise<PoolAccounts> {
      try {
        return await resolvePoolAccounts(keys ? await keys.livePoolConfig(pool) : pool, kms, network, options.verify);
      } catch (err) {
        if (err instanceof PoolMisconfiguredError) throw ApplicationFailure.nonRetryable(err.message, POOL_FAILURES.misconfigured);
        if (isKmsError(err) && !err.retryable)
          throw ApplicationFailure.nonRetryable(err.message, CHAIN_FAILURES.kmsRejected, { kind: err.kind });
        throw err;
      }
    },

    /** Env defaults with the settings collection's overrides, read afresh on every call. */
    async loadPoolSettings(): Promise<PoolSettings> {
      return readPoolSettings(mongo, pool.defaults, (name, reason) => logger.warn('pool setting override ignored', { name, reason }));
    },

    /** Sync of the funding and change addresses: adds new outputs, counts confirmations, never revives. */
    async syncPool(accounts: PoolAccounts): Promise<SyncReport> {
      const chainHeight = (await woc.getChainInfo().catch(chainReadFailure)).blocks;
      const targets = accounts.change.address === accounts.funding.address ? [accounts.funding] : [accounts.funding, accounts.change];
      const results = [];
      for (const target of targets) results.push(await syncAccount(context, target));
      await updatePoolGauges(context);
      return { chainHeight, accounts: results };
    },

    /** Sync of one address under one key: a sweep's change address. */
    async syncAddress(target: { keyIdentifier: string; address: string }): Promise<SyncReport> {
      const chainHeight = (await woc.getChainInfo().catch(chainReadFailure)).blocks;
      const lockingScriptHex = p2pkhOutputScript(target.address, network).toHex();
      return { chainHeight, accounts: [await syncAccount(context, { ...target, lockingScriptHex })] };
    },

    async planTopUp(input: {
      accounts: PoolAccounts;
      settings: PoolSettings;
      chainHeight: number;
    }): Promise<TopUpPlan & { fundsAvailableSats: number }> {
      const spendable = await spendableCount(context, input.accounts.funding, input.settings, input.chainHeight);
      const plan = planTopUp(spendable, input.settings);
      const [funds] = await utxos.aggregate<{ total: number }>([
        {
          $match: {
            status: 'available',
            unseenSyncs: 0,
            keyIdentifier: input.accounts.funding.keyIdentifier,
            lockingScriptHex: input.accounts.funding.lockingScriptHex,
            ...confirmedFilter(input.settings.minConfirmations, input.chainHeight),
          },
        },
        { $group: { _id: null, total: { $sum: '$satoshis' } } },
      ]);
      return { ...plan, fundsAvailableSats: funds?.total ?? 0 };
    },

    /** Reserves the inputs of a split; fails non-retryably when the funds do not cover it. */
    async reserveSplitInputs(input: SplitInputsRequest): Promise<SpendableOutput[]> {
      return reserveSplitInputs(context, input);
    },

    async planSweep(input: { sweep: SweepInput; accounts: PoolAccounts; settings: PoolSettings }): Promise<SweepPlan> {
      const lockingScriptHex = p2pkhOutputScript(input.sweep.changeAddress, network).toHex();
      const candidates = await utxos
        .find({ status: 'available', unseenSyncs: 0, keyIdentifier: input.sweep.changeKeyId, lockingScriptHex }, { _id: 1, satoshis: 1 })
        .lean();
      return planSweep(
        candidates.map((c) => ({ utxoId: c._id, satoshis: c.satoshis })),
        input.settings,
        {
          dustOnly: input.sweep.changeAddress === input.accounts.funding.address,
          trigger: input.sweep.requestedBy === 'schedule' ? 'schedule' : 'manual',
        },
      );
    },

    /** Reserves a sweep's planned inputs; outputs taken meanwhile are left out and the amounts recomputed. */
    async reserveSweepInputs(input: {
      owner: string;
      utxoIds: string[];
      feePerKb: number;
    }): Promise<{ inputs: SpendableOutput[]; outputSats: number; fee: number; totalSats: number }> {
      const held = await reservations.reserveOutpoints(input.owner, input.utxoIds);
      const amounts = sweepAmounts(
        held.map((u) => u.satoshis),
        input.feePerKb,
      );
      if (held.length === 0 || amounts.outputSats < 1) {
        await reservations.giveBack(input.owner);
        throw ApplicationFailure.nonRetryable('the planned sweep inputs are no longer available', POOL_FAILURES.inputsUnavailable, {
          planned: input.utxoIds.length,
          reserved: held.length,
        });
      }
      return { inputs: held.map(spendable), ...amounts };
    },

    /**
     * After a successful broadcast: its inputs are spent, for good. `owner` (the run that reserved them; absent in
     * histories recorded before it was passed) lets the spend be written as one batch.
     */
    async recordPoolSpend(input: { txid: string; inputs: { txid: string; vout: number }[]; owner?: string }): Promise<void> {
      await reservations.markSpent(input.inputs, input.txid, input.owner);
      logger.onChain.info('pool spend recorded', { txid: input.txid, spent: input.inputs.length });
      await updatePoolGauges(context);
    },

    /**
     * Once the transaction has its confirmations: its outputs join the pool with their block height, in one
     * insert (until then the pool could not reserve them anyway; a sync would import them too).
     */
    async ingestPoolOutputs(input: {
      txid: string;
      blockHeight: number | null;
      outputs: { vout: number; satoshis: number; lockingScriptHex: string; keyIdentifier: string }[];
    }): Promise<{ added: number }> {
      let added = 0;
      const byKey = new Map<string, typeof input.outputs>();
      for (const output of input.outputs) byKey.set(output.keyIdentifier, [...(byKey.get(output.keyIdentifier) ?? []), output]);
      for (const [keyIdentifier, outputs] of byKey) {
        const rows = outputs.map((o) => ({
          txid: input.txid,
          vout: o.vout,
          satoshis: o.satoshis,
          lockingScriptHex: o.lockingScriptHex,
          blockHeight: input.blockHeight,
        }));
        added += (await reservations.ingest(rows, keyIdentifier)).added;
      }
      logger.onChain.info('pool outputs added', { txid: input.txid, added });
      await updatePoolGauges(context);
      return { added };
    },

    /** Confirmations of one of our transactions and its block height; null while the chain does not know it. */
    async recordConfirmations(txid: string): Promise<{ confirmations: number; blockHeight: number | null } | null> {
      const tx = await woc.getTx(txid).catch(chainReadFailure);
      if (!tx) return null;
      const blockHeight = tx.blockHeight ?? null;
      // Outputs a sync imported already follow the tx into (or out of, after a reorg) its block.
      await utxos.updateMany({ txid, blockHeight: { $ne: blockHeight } }, { $set: { blockHeight } });
      return { confirmations: tx.confirmations, blockHeight };
    },

    /** The calling workflow gives back its reservations; only when it knows nothing it broadcast spent them. */
    async giveBackReservations(owner: string): Promise<number> {
      const released = await reservations.giveBack(owner);
      if (released > 0) logger.onChain.info('reservations given back', { owner, released });
      return released;
    },

    /** Settles reservations whose workflow has closed, after asking the chain; never by age. */
    async reconcileReservations(input: { limit: number }): Promise<ReconcileReport> {
      return reconcileReservations(context, input);
    },
  };
}

export type PoolActivities = ReturnType<typeof createPoolActivities>;

/** Brings one address's chain outputs into the pool and retires the ones the chain no longer lists. */
async function syncAccount({ woc, utxos, reservations, logger }: PoolContext, target: PoolAccount) {
  const listed = await woc.listUnspent(target.address).catch(chainReadFailure);
  // The address's live outputs, read once: what the ingest compares with, and where vanished ones are looked for.
  const live = (status: 'available' | 'reserved') =>
    utxos.find({ status, lockingScriptHex: target.lockingScriptHex }, { _id: 1, txid: 1, vout: 1, blockHeight: 1, unseenSyncs: 1 }).lean();
  const [local, reserved] = await Promise.all([live('available'), live('reserved')]);
  const { added } = await reservations.ingest(
    listed.map((u) => ({
      txid: u.txid,
      vout: u.vout,
      satoshis: u.satoshis,
      lockingScriptHex: target.lockingScriptHex,
      blockHeight: u.height > 0 ? u.height : null,
    })),
    target.keyIdentifier,
    [...local, ...reserved],
  );
  const listedIds = new Set(listed.map((u) => outpointId(u.txid, u.vout)));
  // Only available outputs: reserved ones belong to a running workflow, and the reconciler settles them. The ingest
  // changed none of those the chain no longer lists.
  const vanished = local.filter((u) => !listedIds.has(u._id)).slice(0, MAX_VANISHED_CHECKS);
  let markedSpent = 0;
  let dropped = 0;
  for (const output of vanished) {
    heartbeat({ checking: output._id });
    const spend = await woc.getOutputSpend(output.txid, output.vout).catch(chainReadFailure);
    if (spend.spent) {
      await reservations.markSpent([output], spend.txid);
      markedSpent += 1;
    } else if ((await woc.getTx(output.txid).catch(chainReadFailure)) === null) {
      // Unknown to the chain: still propagating, or evicted by a reorg. Not offered meanwhile; retired if it stays unknown.
      const unseen = (output.unseenSyncs ?? 0) + 1;
      if (unseen >= UNSEEN_SYNCS_BEFORE_RETIRING) {
        await reservations.markSpent([output], 'dropped');
        dropped += 1;
      } else {
        await utxos.updateOne({ _id: output._id, status: 'available' }, { $set: { unseenSyncs: unseen } });
      }
    }
    // Otherwise the unspent list lags behind the node; the next sync looks again.
  }
  logger.onChain.info('pool synced', { address: target.address, listed: listed.length, added, markedSpent, dropped });
  return { keyIdentifier: target.keyIdentifier, address: target.address, listed: listed.length, added, markedSpent, dropped };
}

async function spendableCount({ utxos }: PoolContext, funding: PoolAccount, settings: PoolSettings, chainHeight: number): Promise<number> {
  return utxos.countDocuments({
    status: 'available',
    unseenSyncs: 0,
    keyIdentifier: funding.keyIdentifier,
    lockingScriptHex: funding.lockingScriptHex,
    satoshis: { $gte: settings.dustThresholdSats },
    ...confirmedFilter(settings.minConfirmations, chainHeight),
  });
}

/**
 * The pool gauges (target; count and satoshis of available and reserved outputs), refreshed after every change to
 * the pool; the spent ones come from the API's health snapshot.
 */
async function updatePoolGauges({ metrics, mongo, pool }: PoolContext): Promise<void> {
  if (!metrics) return;
  metrics.poolTargetOutputs.set((await readPoolSettings(mongo, pool.defaults)).minPool);
  for (const [status, total] of Object.entries(await livePoolTotals(mongo))) {
    metrics.poolOutputs.set({ status }, total.count);
    metrics.poolSatoshis.set({ status }, total.satoshis);
  }
}

export interface SplitInputsRequest {
  owner: string;
  attempt: number;
  accounts: PoolAccounts;
  settings: PoolSettings;
  chainHeight: number;
  outputCount: number;
  /** Inputs of an earlier round the node refused: not chosen again by this run, whatever the chain view says. */
  excludeUtxoIds?: string[];
}

/**
 * Reserves the inputs of a split: the smallest output that covers it alone, else the largest outputs until they do.
 * Not enough funds: gives back what it took and fails non-retryably (the alert counts it).
 */
async function reserveSplitInputs({ reservations, metrics, logger }: PoolContext, input: SplitInputsRequest): Promise<SpendableOutput[]> {
  const { owner, accounts, settings, outputCount } = input;
  const base = {
    owner,
    keyIdentifier: accounts.funding.keyIdentifier,
    lockingScriptHex: accounts.funding.lockingScriptHex,
    minConfirmations: settings.minConfirmations,
    chainHeight: input.chainHeight,
    ...(input.excludeUtxoIds && input.excludeUtxoIds.length > 0 && { excludeUtxoIds: input.excludeUtxoIds }),
  };
  const slot = (i: number) => `split-input-${input.attempt}-${String(i).padStart(3, '0')}`;
  const held: UtxoDocument[] = [];
  const single = await reservations.reserve({ ...base, slot: slot(0), minSatoshis: splitFundsNeeded(1, outputCount, settings) });
  if (single) held.push(single);
  else {
    for (let i = 0; i < MAX_SPLIT_INPUTS; i++) {
      const sum = held.reduce((s, u) => s + u.satoshis, 0);
      if (held.length > 0 && sum >= splitFundsNeeded(held.length, outputCount, settings)) break;
      const next = await reservations.reserve({ ...base, slot: slot(i + 1), minSatoshis: 1, order: 'largest' });
      if (!next) break;
      held.push(next);
    }
  }
  const sum = held.reduce((s, u) => s + u.satoshis, 0);
  const needed = splitFundsNeeded(Math.max(1, held.length), outputCount, settings);
  if (held.length === 0 || sum < needed) {
    await reservations.giveBack(owner);
    metrics?.poolOperationFailures.inc({ operation: 'top-up', reason: 'insufficient_funds' });
    logger.onChain.warn('top-up: insufficient funds', { needed, available: sum, fundingAddress: accounts.funding.address });
    throw ApplicationFailure.nonRetryable(
      `insufficient funds for a split of ${outputCount} outputs: need ${needed} sat in confirmed outputs of ${accounts.funding.address}, have ${sum} sat`,
      POOL_FAILURES.insufficientFunds,
      { needed, available: sum, fundingAddress: accounts.funding.address },
    );
  }
  return held.map(spendable);
}

/**
 * Settles reservations whose workflow has closed: released when the chain shows the output unspent, recorded as spent
 * when it does not. Nothing is released by age.
 */
async function reconcileReservations(context: PoolContext, input: { limit: number }): Promise<ReconcileReport> {
  const { temporal, reservations, woc, logger } = context;
  if (!temporal) throw ApplicationFailure.nonRetryable('the reconciler needs a Temporal client', POOL_FAILURES.misconfigured);
  const report: ReconcileReport = { checked: 0, released: 0, ownerRunning: 0, spentOnChain: 0, alreadySettled: 0 };
  const closed = new Map<string, boolean>();
  const isOwnerClosed = async (owner: string): Promise<boolean> => {
    const known = closed.get(owner) ?? (await hasWorkflowClosed(temporal, owner));
    closed.set(owner, known);
    return known;
  };
  for (const held of await reservations.oldestReservations(input.limit)) {
    heartbeat(report);
    report.checked += 1;
    if (!held.utxo || held.utxo.status !== 'reserved') {
      await reservations.forgetSpentReservation(held.owner, held.slot);
      report.alreadySettled += 1;
      continue;
    }
    const utxo = held.utxo;
    let spentBy: string | undefined;
    const outcome = await reservations.release(held.owner, held.slot, {
      isOwnerClosed,
      isUnspentOnChain: async (txid, vout) => {
        const spend = await woc.getOutputSpend(txid, vout).catch(chainReadFailure);
        if (spend.spent) spentBy = spend.txid;
        return !spend.spent;
      },
    });
    if (outcome === 'released') report.released += 1;
    else if (outcome === 'owner_running') report.ownerRunning += 1;
    else if (outcome === 'spent_on_chain') {
      await reservations.markSpent([utxo], spentBy ?? 'unknown');
      report.spentOnChain += 1;
    } else report.alreadySettled += 1;
  }
  logger.onChain.info('reservations reconciled', { ...report });
  await updatePoolGauges(context);
  return report;
}

/** Whether the workflow run that holds a reservation has closed; one gone past retention certainly has. */
async function hasWorkflowClosed(temporal: Client, owner: string): Promise<boolean> {
  const { workflowId, runId } = parseReservationOwner(owner);
  try {
    const description = await temporal.workflow.getHandle(workflowId, runId).describe();
    return description.status.name !== 'RUNNING';
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    return true;
  }
}

function spendable(utxo: UtxoDocument): SpendableOutput {
  return {
    txid: utxo.txid,
    vout: utxo.vout,
    satoshis: utxo.satoshis,
    lockingScriptHex: utxo.lockingScriptHex,
    keyIdentifier: utxo.keyIdentifier,
  };
}

function chainReadFailure(err: unknown): never {
  throw chainFailure(err, 'read');
}

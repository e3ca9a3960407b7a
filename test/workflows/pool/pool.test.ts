import { WorkflowFailedError } from '@temporalio/client';
import { planTopUp } from '../../../src/pool/planning';
import {
  scheduledPoolOperationWorkflow,
  utxoReconcileWorkflow,
  utxoSweepWorkflow,
  utxoSyncWorkflow,
  utxoTopUpWorkflow,
} from '../../../workflows';
import type { SweepInput } from '../../../workflows/pool/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { hex64, nonRetryable, POOL_ACCOUNTS, POOL_SETTINGS, signedFor, txidOfPlan } from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const CHAIN_HEIGHT = 800_000;

/** The pool's activities against a fake chain: `spendable` outputs in the pool, every broadcast tx confirmed at once. */
function poolActivities(spendable: number) {
  return mockActivities({
    loadPoolSettings: async () => POOL_SETTINGS,
    resolvePoolAccounts: async () => POOL_ACCOUNTS,
    syncPool: async () => ({ chainHeight: CHAIN_HEIGHT, accounts: [] }),
    syncAddress: async () => ({ chainHeight: CHAIN_HEIGHT, accounts: [] }),
    planTopUp: async ({ settings }) => ({ ...planTopUp(spendable, settings), fundsAvailableSats: 1_000_000 }),
    reserveSplitInputs: async ({ attempt }) => [
      {
        txid: hex64(`funding-${attempt}`),
        vout: 0,
        satoshis: 1_000_000,
        lockingScriptHex: POOL_ACCOUNTS.funding.lockingScriptHex,
        keyIdentifier: 'funding',
      },
    ],
    planSweep: async ({ sweep }) => ({
      action: 'sweep',
      utxoIds: [`${hex64(sweep.changeAddress)}:0`, `${hex64(sweep.changeAddress)}:1`],
      inputCount: 2,
      totalSats: 2_000,
      fee: 50,
      outputSats: 1_950,
      remaining: 0,
      dustOnly: false,
    }),
    reserveSweepInputs: async ({ utxoIds }) => ({
      inputs: utxoIds.map((id) => ({
        txid: id.split(':')[0]!,
        vout: Number(id.split(':')[1]),
        satoshis: 1_000,
        lockingScriptHex: '76a9',
        keyIdentifier: 'change',
      })),
      outputSats: 1_950,
      fee: 50,
      totalSats: 2_000,
    }),
    signTransaction: async (plan) => signedFor(plan),
    broadcastTransaction: async (signed) => ({ txid: signed.txid, alreadyKnown: false }),
    recordPoolSpend: async () => undefined,
    recordConfirmations: async () => ({ confirmations: POOL_SETTINGS.minConfirmations, blockHeight: CHAIN_HEIGHT }),
    ingestPoolOutputs: async ({ outputs }) => ({ added: outputs.length }),
    giveBackReservations: async () => 1,
    reconcileReservations: async ({ limit }) => ({ checked: limit, released: 2, ownerRunning: 1, spentOnChain: 0, alreadySettled: 0 }),
  });
}

const SWEEP: SweepInput = {
  requestedBy: 'test',
  changeAddress: POOL_ACCOUNTS.change.address,
  changeKeyId: POOL_ACCOUNTS.change.keyIdentifier,
  destinationAddress: POOL_ACCOUNTS.funding.address,
};

describe('pool workflows', () => {
  const server = timeSkippingEnvForBlock();

  it('splits a funding output into the missing outputs and adds them to the pool once confirmed', async () => {
    const spendable = 4;
    const activities = poolActivities(spendable);
    const report = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(utxoTopUpWorkflow, { taskQueue, workflowId: 'topup-split', args: [{ requestedBy: 'test' }] }),
    );
    const missing = POOL_SETTINGS.minPool - spendable;
    const plan = activities.signTransaction.mock.calls[0]![0];
    expect(report).toMatchObject({
      outcome: 'completed',
      spendableBefore: spendable,
      outputCount: missing,
      transaction: { txid: txidOfPlan(plan) },
    });
    expect(plan.outputs).toHaveLength(missing);
    // The split's outputs and its change join the pool.
    expect(activities.ingestPoolOutputs.mock.calls[0]![0].outputs).toHaveLength(missing + 1);
  });

  it('skips a healthy pool and plans without signing in a dry run', async () => {
    const healthy = poolActivities(POOL_SETTINGS.minPool);
    const skipped = await withWorker(server.env, healthy, (taskQueue) =>
      server.env.client.workflow.execute(utxoTopUpWorkflow, { taskQueue, workflowId: 'topup-healthy', args: [{ requestedBy: 'test' }] }),
    );
    expect(skipped).toMatchObject({ outcome: 'skipped', reason: 'pool_healthy' });
    expect(healthy.reserveSplitInputs).not.toHaveBeenCalled();

    const low = poolActivities(0);
    const dryRun = await withWorker(server.env, low, (taskQueue) =>
      server.env.client.workflow.execute(utxoTopUpWorkflow, {
        taskQueue,
        workflowId: 'topup-dry',
        args: [{ requestedBy: 'test', dryRun: true }],
      }),
    );
    expect(dryRun).toMatchObject({
      outcome: 'dry_run',
      dryRun: true,
      outputCount: Math.min(POOL_SETTINGS.minPool, POOL_SETTINGS.maxSplitOutputs),
      sufficientFunds: true,
    });
    expect(low.resolvePoolAccounts).toHaveBeenCalledWith({ verify: false });
    expect(low.signTransaction).not.toHaveBeenCalled();
  });

  it('surfaces insufficient funds as the workflow’s own non-retryable failure', async () => {
    const activities = mockActivities({
      ...poolActivities(0),
      reserveSplitInputs: async () => {
        throw nonRetryable('InsufficientFunds', 'insufficient funds for a split');
      },
    });
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(utxoTopUpWorkflow, { taskQueue, workflowId: 'topup-poor', args: [{ requestedBy: 'test' }] }),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({
      type: 'InsufficientFunds',
      message: 'insufficient funds for a split',
      nonRetryable: true,
    });
    expect(activities.signTransaction).not.toHaveBeenCalled();
  });

  it('gives the reservations back and fails when the KMS refuses to sign', async () => {
    const activities = mockActivities({
      ...poolActivities(0),
      signTransaction: async () => {
        throw nonRetryable('KmsRejected', 'key disabled');
      },
    });
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(utxoTopUpWorkflow, { taskQueue, workflowId: 'topup-kms', args: [{ requestedBy: 'test' }] }),
    ).catch((err: unknown) => err);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'KmsRejected' });
    expect(activities.giveBackReservations).toHaveBeenCalledTimes(1);
    expect(activities.broadcastTransaction).not.toHaveBeenCalled();
  });

  it('sweeps the change address’s outputs into one output that joins the pool', async () => {
    const activities = poolActivities(0);
    const report = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(utxoSweepWorkflow, { taskQueue, workflowId: 'sweep-change', args: [SWEEP] }),
    );
    const plan = activities.signTransaction.mock.calls[0]![0];
    expect(report).toMatchObject({ outcome: 'completed', inputCount: 2, outputSats: 1_950, transaction: { txid: txidOfPlan(plan) } });
    expect(plan.outputs).toEqual([{ kind: 'p2pkh', address: SWEEP.destinationAddress, satoshis: 1_950 }]);
    expect(activities.ingestPoolOutputs).toHaveBeenCalledWith(
      expect.objectContaining({ outputs: [expect.objectContaining({ vout: 0, satoshis: 1_950 })] }),
    );
  });

  it('runs sync and reconcile and returns their reports', async () => {
    const activities = poolActivities(0);
    const { sync, reconcile } = await withWorker(server.env, activities, async (taskQueue) => ({
      sync: await server.env.client.workflow.execute(utxoSyncWorkflow, {
        taskQueue,
        workflowId: 'utxo-sync',
        args: [{ requestedBy: 'test' }],
      }),
      reconcile: await server.env.client.workflow.execute(utxoReconcileWorkflow, { taskQueue, workflowId: 'utxo-reconcile' }),
    }));
    expect(sync.chainHeight).toBe(CHAIN_HEIGHT);
    expect(activities.syncPool).toHaveBeenCalledWith(POOL_ACCOUNTS);
    expect(reconcile).toEqual(await activities.reconcileReservations.mock.results[0]!.value);
  });

  it('runs a scheduled operation as a child under its fixed id, and does nothing while a run holds the id', async () => {
    const activities = poolActivities(POOL_SETTINGS.minPool);
    const { completed, busy } = await withWorker(server.env, activities, async (taskQueue) => {
      const completed = await server.env.client.workflow.execute(scheduledPoolOperationWorkflow, {
        taskQueue,
        workflowId: 'scheduled-topup-1',
        args: [{ operation: 'top-up', workflowId: 'utxo-topup-funding', input: { requestedBy: 'schedule' } }],
      });
      // A manual run holds the id (on a queue no worker serves, so it stays open).
      await server.env.client.workflow.start(utxoTopUpWorkflow, {
        taskQueue: `${taskQueue}-idle`,
        workflowId: 'utxo-topup-held',
        args: [{ requestedBy: 'cli' }],
      });
      const busy = await server.env.client.workflow.execute(scheduledPoolOperationWorkflow, {
        taskQueue,
        workflowId: 'scheduled-topup-2',
        args: [{ operation: 'top-up', workflowId: 'utxo-topup-held', input: { requestedBy: 'schedule' } }],
      });
      return { completed, busy };
    });
    expect(completed).toMatchObject({
      operation: 'top-up',
      workflowId: 'utxo-topup-funding',
      outcome: 'completed',
      result: { outcome: 'skipped' },
    });
    expect(busy).toEqual({ operation: 'top-up', workflowId: 'utxo-topup-held', outcome: 'already_running' });
  });
});

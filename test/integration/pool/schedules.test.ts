import { ScheduleOverlapPolicy } from '@temporalio/client';
import { loadConfig } from '../../../src/config';
import { POOL_SCHEDULE_IDS, topUpWorkflowId } from '../../../src/pool/ids';
import { getPoolOperationStatus, startSync, startTopUp, waitForPoolOperation } from '../../../src/pool/launch';
import { utxoModel } from '../../../src/pool/models';
import { createReservations } from '../../../src/pool/reservations';
import { writePoolSetting } from '../../../src/pool/settings';
import { desiredSchedules, reconcileSchedules } from '../../../workers/schedules';
import type { ScheduledPoolRunReport, TopUpReport } from '../../../workflows/pool/shared';
import { recordHistoryIfAsked } from '../../support/histories';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { testEnvironment } from '../../support/stack';
import { triggerSchedule } from '../../support/schedules';

const TARGET = 4;

describe('pool schedules', () => {
  let stack: PoolStack;

  beforeAll(async () => {
    stack = await startPoolStack({ UTXO_MIN_POOL: String(TARGET), UTXO_SPLIT_SIZE_SATS: '3000', DUST_THRESHOLD_SATS: '1000' });
    const config = loadConfig(
      testEnvironment({ ...stack.env, UTXO_TOPUP_EVERY: '15m', UTXO_SWEEP_CRON: '0 2 * * *', UTXO_RECONCILE_EVERY: '1h' }),
    );
    for (const id of Object.values(POOL_SCHEDULE_IDS)) {
      await stack.deps.temporal.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
    const result = await reconcileSchedules(stack.deps.temporal, desiredSchedules(config, stack.accounts));
    expect(result.created).toEqual(expect.arrayContaining(Object.values(POOL_SCHEDULE_IDS)));
  });
  afterAll(async () => {
    // The namespace is shared with later files of this Jest worker; leave no schedule firing into it.
    for (const id of Object.values(POOL_SCHEDULE_IDS)) {
      await stack?.deps.temporal.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
    await stack?.close();
  });

  const mineWhile = async <T>(promise: Promise<T>): Promise<T> => {
    let done = false;
    const miner = (async () => {
      while (!done) {
        await stack.simulator.mine(1);
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      return await promise;
    } finally {
      done = true;
      await miner;
    }
  };

  /** Triggers a schedule and returns the report of the run that tick started. */
  const triggerAndWait = async (scheduleId: string): Promise<ScheduledPoolRunReport> => {
    const workflowId = await triggerSchedule(stack.deps.temporal, scheduleId);
    expect(workflowId).toBeDefined();
    const report = (await stack.deps.temporal.workflow.getHandle(workflowId!).result()) as ScheduledPoolRunReport;
    await recordHistoryIfAsked(stack.deps.temporal, workflowId!, `scheduled-${report.operation}-${report.outcome.replace('_', '-')}`);
    if (report.runId)
      await recordHistoryIfAsked(stack.deps.temporal, report.workflowId, `utxo-${report.operation}-scheduled`, report.runId);
    return report;
  };

  it('creates the top-up, sweep and reconcile schedules with explicit overlap and catch-up policies', async () => {
    const topUp = await stack.deps.temporal.schedule.getHandle(POOL_SCHEDULE_IDS.topUp).describe();
    expect(topUp.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
    expect(topUp.policies.catchupWindow).toBe(10 * 60 * 1000);
    expect(topUp.spec.intervals?.[0]?.every).toBe(15 * 60 * 1000);
    const sweep = await stack.deps.temporal.schedule.getHandle(POOL_SCHEDULE_IDS.sweep).describe();
    expect(sweep.info.nextActionTimes[0]!.getUTCHours()).toBe(2);
    expect(sweep.info.nextActionTimes[0]!.getUTCMinutes()).toBe(0);
    expect(sweep.action.type === 'startWorkflow' && sweep.action.args?.[0]).toMatchObject({
      operation: 'sweep',
      input: { changeAddress: stack.accounts.change.address, destinationAddress: stack.accounts.funding.address },
    });
  });

  it('makes a scheduled tick a no-op while a manual top-up holds the id, and lets it finish once', async () => {
    await stack.fund(stack.accounts.funding.address, 100_000);
    // Three confirmations without a miner: the manual run waits in `confirming` while the schedule fires.
    await writePoolSetting(stack.deps.mongo, 'UTXO_MIN_CONFIRMATIONS', 3, 'test');
    await writePoolSetting(stack.deps.mongo, 'UTXO_MIN_POOL', TARGET, 'test');
    await stack.simulator.mine(3);
    const startedAfter = new Date().toISOString();
    const manual = await startTopUp(stack.deps.temporal, stack.accounts.funding.keyIdentifier, { requestedBy: 'test' });
    for (let i = 0; i < 100; i++) {
      const status = await getPoolOperationStatus(stack.deps.temporal, manual.workflowId);
      if (status.state === 'running' && status.progress?.step === 'confirming') break;
      await new Promise((r) => setTimeout(r, 100));
    }

    const tick = await triggerAndWait(POOL_SCHEDULE_IDS.topUp);
    expect(tick).toMatchObject({ operation: 'top-up', outcome: 'already_running', workflowId: topUpWorkflowId('funding') });

    const done = await mineWhile(waitForPoolOperation(stack.deps.temporal, manual.workflowId, manual.runId, { pollMs: 200 }));
    expect(done).toMatchObject({ state: 'completed', result: { outcome: 'completed' } });
    const runs: string[] = [];
    // Earlier files of this Jest worker ran the same id in this namespace; count the runs since this test began.
    const query = `WorkflowId = '${manual.workflowId}' AND StartTime >= '${startedAfter}'`;
    for await (const run of stack.deps.temporal.workflow.list({ query })) runs.push(run.runId);
    expect(runs).toEqual([manual.runId]);
    await writePoolSetting(stack.deps.mongo, 'UTXO_MIN_CONFIRMATIONS', 1, 'test');
  });

  it('refills the pool from the schedule after registrations drained it', async () => {
    const reservations = createReservations(stack.deps.mongo);
    for (const slot of ['a', 'b', 'c']) {
      const held = await reservations.reserve({
        owner: `registration-${slot}@run`,
        slot: 'anchor-input',
        keyIdentifier: 'funding',
        minSatoshis: 3000,
        minConfirmations: 0,
        chainHeight: 0,
      });
      expect(held).not.toBeNull();
      await reservations.markSpent([held!], 'd'.repeat(64));
    }
    const tick = await mineWhile(triggerAndWait(POOL_SCHEDULE_IDS.topUp));
    expect(tick.outcome).toBe('completed');
    const report = tick.result as TopUpReport;
    expect(report).toMatchObject({ outcome: 'completed', requestedBy: 'schedule', outputCount: 3 });
    const spendable = await utxoModel(stack.deps.mongo).countDocuments({ status: 'available', satoshis: { $gte: 1000 } });
    expect(spendable).toBeGreaterThanOrEqual(TARGET);
  });

  it('reconciles reservations by workflow state and chain state, never by age', async () => {
    const reservations = createReservations(stack.deps.mongo);
    const fundingTxs = [await stack.fund(stack.accounts.funding.address, 7_001), await stack.fund(stack.accounts.funding.address, 7_002)];
    await mineWhile(waitForPoolOperation(stack.deps.temporal, ...(await syncIds())));
    // A closed owner (a finished system check) and a running one (a run on a queue no worker polls).
    const closed = await stack.deps.temporal.workflow.start('systemCheckWorkflow', {
      workflowId: 'reconcile-closed-owner',
      taskQueue: 'patchproof-main',
      args: [{ checkId: 'reconcile-closed-owner', requestedBy: 'test' }],
    });
    await closed.result();
    const running = await stack.deps.temporal.workflow.start('systemCheckWorkflow', {
      workflowId: 'reconcile-running-owner',
      taskQueue: 'nobody-polls-this-queue',
      args: [{ checkId: 'reconcile-running-owner', requestedBy: 'test' }],
    });
    const reserve = (owner: string, minSatoshis: number) =>
      reservations.reserve({ owner, slot: 'anchor-input', keyIdentifier: 'funding', minSatoshis, minConfirmations: 0, chainHeight: 0 });
    const closedHeld = await reserve(`reconcile-closed-owner@${closed.firstExecutionRunId}`, 7_001);
    const runningHeld = await reserve(`reconcile-running-owner@${running.firstExecutionRunId}`, 7_002);
    expect([closedHeld?.txid, runningHeld?.txid]).toEqual(fundingTxs.map((f) => f.txid));
    // Reserved long ago, as far as the records say: age must not matter.
    await utxoModel(stack.deps.mongo).updateMany({ status: 'reserved' }, { $set: { reservedAt: new Date('2020-01-01') } });

    const tick = await triggerAndWait(POOL_SCHEDULE_IDS.reconcile);
    expect(tick.outcome).toBe('completed');
    expect(tick.result).toMatchObject({ released: 1, ownerRunning: 1 });
    expect(await utxoModel(stack.deps.mongo).findById(closedHeld!._id).lean()).toMatchObject({ status: 'available', reservedBy: null });
    expect(await utxoModel(stack.deps.mongo).findById(runningHeld!._id).lean()).toMatchObject({ status: 'reserved' });
    await running.terminate('test done');
  });

  async function syncIds(): Promise<[string, string]> {
    const started = await startSync(stack.deps.temporal, 'funding', 'test');
    return [started.workflowId, started.runId];
  }
});

import { Transaction } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { utxoModel } from '../../../src/pool/models';
import { createReservations } from '../../../src/pool/reservations';
import { topUpWorkflowId } from '../../../src/pool/ids';
import { getPoolOperationStatus, startTopUp, waitForPoolOperation } from '../../../src/pool/launch';
import { writePoolSetting } from '../../../src/pool/settings';
import type { TopUpReport } from '../../../workflows/pool/shared';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

const TARGET = 6;
const SPLIT_SATS = 3_000;

describe('pool top-up against the dev KMS and the chain simulator', () => {
  let stack: PoolStack;
  let api: Listening;
  let funded: { txid: string; vout: number };
  const apiKey = () => stack.deps.config.auth.apiKey;

  beforeAll(async () => {
    stack = await startPoolStack(
      { UTXO_MIN_POOL: String(TARGET), UTXO_SPLIT_SIZE_SATS: String(SPLIT_SATS), DUST_THRESHOLD_SATS: '1000', FEE_PER_KB: '100' },
      { blockIntervalMs: 300 },
    );
    api = await listen(createApp(stack.deps));
  });
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${api.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey() },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const runTopUp = async (dryRun: boolean, recordAs?: string): Promise<TopUpReport> => {
    const started = await startTopUp(stack.deps.temporal, stack.accounts.funding.keyIdentifier, { requestedBy: 'test', dryRun });
    const done = await waitForPoolOperation(stack.deps.temporal, started.workflowId, started.runId, { pollMs: 200, timeoutMs: 60_000 });
    if (done.state !== 'completed') throw new Error(`top-up ended ${JSON.stringify(done)}`);
    if (recordAs) await recordHistoryIfAsked(stack.deps.temporal, started.workflowId, recordAs, started.runId);
    return done.result as TopUpReport;
  };
  const available = () =>
    utxoModel(stack.deps.mongo).countDocuments({ status: 'available', lockingScriptHex: stack.accounts.funding.lockingScriptHex });

  it('plans a dry run without reserving, signing or broadcasting anything', async () => {
    funded = await stack.fund(stack.accounts.funding.address, 100_000);
    const kmsCallsBefore = stack.kms.requests.length;

    const report = await runTopUp(true, 'utxo-topup-dry-run');

    expect(report).toMatchObject({ outcome: 'dry_run', dryRun: true, spendableBefore: 1, target: TARGET, outputCount: TARGET - 1 });
    expect(report.sufficientFunds).toBe(true);
    expect(report.requiredSats).toBeGreaterThan((TARGET - 1) * SPLIT_SATS);
    expect(stack.kms.requests.length).toBe(kmsCallsBefore);
    expect(stack.simulator.simulator.chains.test.spenderOf(funded.txid, funded.vout)).toBeUndefined();
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
  });

  it('splits a funding output into the missing pool outputs with one KMS request, and waits for confirmation', async () => {
    const signsBefore = stack.signRequests();
    const report = await runTopUp(false, 'utxo-topup-completed');

    expect(report.outcome).toBe('completed');
    expect(report.outputCount).toBe(TARGET - 1);
    const txid = report.transaction!.txid;
    expect(stack.simulator.simulator.chains.test.spenderOf(funded.txid, funded.vout)?.txid).toBe(txid);
    expect(report.transaction!.confirmations).toBeGreaterThanOrEqual(1);
    expect(stack.signRequests() - signsBefore).toBe(1);

    // The simulator accepted and mined exactly what the report describes.
    const raw = await (await fetch(`${stack.simulator.baseUrl}/v1/bsv/test/tx/${txid}/hex`)).text();
    const tx = Transaction.fromHex(raw);
    const poolOutputs = tx.outputs.filter((o) => o.satoshis === SPLIT_SATS);
    expect(poolOutputs).toHaveLength(TARGET - 1);
    expect(report.transaction!.fee).toBeGreaterThanOrEqual(Math.ceil((raw.length / 2) * 0.1));

    // The split's outputs and its change are in the pool; the funding input is spent.
    expect(await available()).toBe(TARGET);
    const spent = await utxoModel(stack.deps.mongo).find({ status: 'spent' }).lean();
    expect(spent.map((u) => u.spentBy)).toEqual([txid]);
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
  });

  it('skips when the pool already holds its target', async () => {
    const report = await runTopUp(false);
    expect(report).toMatchObject({ outcome: 'skipped', reason: 'pool_healthy', spendableBefore: TARGET });
  });

  it('reads the target afresh from the settings collection on every run', async () => {
    await writePoolSetting(stack.deps.mongo, 'UTXO_MIN_POOL', TARGET + 2, 'test');
    const report = await runTopUp(true);
    expect(report).toMatchObject({ outcome: 'dry_run', target: TARGET + 2, outputCount: 2 });
    await writePoolSetting(stack.deps.mongo, 'UTXO_MIN_POOL', TARGET, 'test');
  });

  it('fails clearly, non-retryably, and gives back its reservations when funds are insufficient', async () => {
    await writePoolSetting(stack.deps.mongo, 'UTXO_MIN_POOL', 500, 'test');
    await writePoolSetting(stack.deps.mongo, 'MAX_SPLIT_OUTPUTS', 400, 'test');
    try {
      const started = await startTopUp(stack.deps.temporal, stack.accounts.funding.keyIdentifier, { requestedBy: 'test' });
      const done = await waitForPoolOperation(stack.deps.temporal, started.workflowId, started.runId, { pollMs: 200, timeoutMs: 60_000 });
      expect(done).toMatchObject({ state: 'failed', failureType: 'InsufficientFunds' });
      await recordHistoryIfAsked(stack.deps.temporal, started.workflowId, 'utxo-topup-insufficient-funds', started.runId);
      expect((done as { reason: string }).reason).toMatch(/insufficient funds for a split of 400 outputs: need \d+ sat/);
      expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
      const metrics = await stack.deps.metrics.registry.getSingleMetricAsString('patchproof_utxo_pool_operation_failures_total');
      expect(metrics).toMatch(/operation="top-up",reason="insufficient_funds".* 1/);
    } finally {
      await writePoolSetting(stack.deps.mongo, 'UTXO_MIN_POOL', TARGET, 'test');
      await writePoolSetting(stack.deps.mongo, 'MAX_SPLIT_OUTPUTS', 40, 'test');
    }
  });

  it('answers 202 for a manual top-up and 409 naming the running one for a second', async () => {
    // Drain two pool outputs the way registrations do: reserved by a workflow and spent by its transaction.
    const reservations = createReservations(stack.deps.mongo);
    for (const slot of ['a', 'b']) {
      const held = await reservations.reserve({
        owner: 'registration-drain@run',
        slot,
        keyIdentifier: stack.accounts.funding.keyIdentifier,
        minSatoshis: 1,
        minConfirmations: 0,
        chainHeight: 0,
      });
      await reservations.markSpent([held!], 'f'.repeat(64));
    }
    const [first, second] = await Promise.all([post('/v1/admin/utxo/top-up', {}), post('/v1/admin/utxo/top-up', {})]);
    const statuses = [first.status, second.status].sort();
    expect(statuses).toEqual([202, 409]);
    const winner = first.status === 202 ? first.body : second.body;
    const loser = first.status === 409 ? first.body : second.body;
    expect(loser).toMatchObject({
      error: {
        code: 'OPERATION_IN_PROGRESS',
        details: { workflowId: topUpWorkflowId(stack.accounts.funding.keyIdentifier), runId: winner.runId },
      },
    });
    const done = await waitForPoolOperation(stack.deps.temporal, winner.workflowId as string, winner.runId as string, { pollMs: 200 });
    expect(done.state).toBe('completed');
    expect(await available()).toBeGreaterThanOrEqual(TARGET);

    const status = await fetch(`${api.baseUrl}${winner.statusUrl as string}`, { headers: { 'x-api-key': apiKey() } });
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ state: 'completed', runId: winner.runId, result: { outcome: 'completed' } });
  });

  it('rejects bad admin input with 4xx envelopes', async () => {
    expect((await post('/v1/admin/utxo/top-up', { dryRun: 'yes' })).status).toBe(400);
    expect((await post('/v1/admin/utxo/top-up', { dryRun: true, extra: 1 })).status).toBe(400);
    const sweep = await post('/v1/admin/utxo/sweep', {
      changeAddress: 'not-an-address',
      changeKeyId: 'k',
      destinationAddress: stack.accounts.funding.address,
    });
    expect(sweep).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    const foreign = await fetch(`${api.baseUrl}/v1/admin/utxo/operations/registration-x`, { headers: { 'x-api-key': apiKey() } });
    expect(foreign.status).toBe(400);
    const unknown = await getPoolOperationStatus(stack.deps.temporal, 'utxo-topup-nobody');
    expect(unknown.state).toBe('not_found');
  });
});

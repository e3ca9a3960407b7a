import { PrivateKey, Transaction } from '@bsv/sdk';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import { signTransaction } from '../../../src/chain/signing';
import { buildTransaction, p2pkhOutputScript } from '../../../src/chain/transactions';
import { outpointId, utxoModel } from '../../../src/pool/models';
import { createReservations } from '../../../src/pool/reservations';
import { startSweep, startSync, startTopUp, waitForPoolOperation } from '../../../src/pool/launch';
import type { SweepReport, SyncReport, TopUpReport } from '../../../workflows/pool/shared';
import { recordHistoryIfAsked } from '../../support/histories';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

const DUST = 500;

describe('pool sweep and sync against the dev KMS and the chain simulator', () => {
  let stack: PoolStack;

  beforeAll(async () => {
    stack = await startPoolStack(
      { UTXO_MIN_POOL: '3', UTXO_SPLIT_SIZE_SATS: '4000', DUST_THRESHOLD_SATS: '1000', DUST_SWEEP_LIMIT: '5', FEE_PER_KB: '100' },
      { blockIntervalMs: 300 },
    );
  });
  afterAll(() => stack?.close());

  const finished = async <R>(started: { workflowId: string; runId: string }, recordAs?: string): Promise<R> => {
    const done = await waitForPoolOperation(stack.deps.temporal, started.workflowId, started.runId, { pollMs: 200, timeoutMs: 90_000 });
    if (done.state !== 'completed') throw new Error(`${started.workflowId} ended ${JSON.stringify(done)}`);
    if (recordAs) await recordHistoryIfAsked(stack.deps.temporal, started.workflowId, recordAs, started.runId);
    return done.result as R;
  };
  const sweepInput = (dryRun: boolean) => ({
    requestedBy: 'test' as const,
    changeAddress: stack.accounts.funding.address,
    changeKeyId: stack.accounts.funding.keyIdentifier,
    destinationAddress: stack.accounts.funding.address,
    dryRun,
  });
  const utxos = () => utxoModel(stack.deps.mongo);

  it('consolidates dust in one transaction the simulator accepts, and never touches a reserved output', async () => {
    const dust = [];
    for (let i = 0; i < 8; i++) dust.push(await stack.fund(stack.accounts.funding.address, DUST + i));
    await finished<SyncReport>(await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test'), 'utxo-sync');
    // A registration in flight holds one of them.
    const held = await createReservations(stack.deps.mongo).reserve({
      owner: 'registration-inflight@run',
      slot: 'anchor-input',
      keyIdentifier: stack.accounts.funding.keyIdentifier,
      minSatoshis: DUST + 7,
      minConfirmations: 0,
      chainHeight: 0,
    });
    expect(held?._id).toBe(outpointId(dust[7]!.txid, 0));

    const signsBefore = stack.signRequests();
    const kmsCallsBefore = stack.kms.requests.length;
    const plan = await finished<SweepReport>(await startSweep(stack.deps.temporal, sweepInput(true)), 'utxo-sweep-dry-run');
    expect(plan).toMatchObject({ outcome: 'dry_run', dustOnly: true, eligible: 7, inputCount: 7 });
    expect(stack.kms.requests.length).toBe(kmsCallsBefore);

    const report = await finished<SweepReport>(await startSweep(stack.deps.temporal, sweepInput(false)), 'utxo-sweep-completed');
    expect(report.outcome).toBe('completed');
    expect(report.inputCount).toBe(7);
    expect(stack.signRequests() - signsBefore).toBe(1);
    const txid = report.transaction!.txid;
    const raw = await (await fetch(`${stack.simulator.baseUrl}/v1/bsv/test/tx/${txid}/hex`)).text();
    const tx = Transaction.fromHex(raw);
    expect(tx.inputs.map((i) => `${i.sourceTXID}:${i.sourceOutputIndex}`).sort()).toEqual(
      dust
        .slice(0, 7)
        .map((d) => outpointId(d.txid, 0))
        .sort(),
    );
    expect(tx.outputs).toHaveLength(1);
    expect(tx.outputs[0]!.satoshis).toBe(report.outputSats);
    expect(report.totalSats - report.fee).toBe(report.outputSats);

    // The reserved output is still reserved and unspent on chain; the consolidated output joined the pool.
    expect(await utxos().findById(held!._id).lean()).toMatchObject({ status: 'reserved', reservedBy: 'registration-inflight@run' });
    expect(stack.simulator.simulator.chains.test.spenderOf(dust[7]!.txid, 0)).toBeUndefined();
    expect(await utxos().findById(outpointId(txid, 0)).lean()).toMatchObject({ status: 'available', satoshis: report.outputSats });
  });

  it('never makes a reserved or spent output available again when the chain still lists it', async () => {
    const fundedOutput = await stack.fund(stack.accounts.funding.address, 20_000);
    await finished<SyncReport>(await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test'));
    const reservations = createReservations(stack.deps.mongo);
    const held = await reservations.reserve({
      owner: 'registration-sync@run',
      slot: 'anchor-input',
      keyIdentifier: stack.accounts.funding.keyIdentifier,
      minSatoshis: 20_000,
      minConfirmations: 0,
      chainHeight: 0,
    });
    expect(held?._id).toBe(outpointId(fundedOutput.txid, 0));
    // Marked spent locally although the chain has not seen the spend yet (propagation lag): WOC still lists it.
    const other = await stack.fund(stack.accounts.funding.address, 21_000);
    await finished<SyncReport>(await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test'));
    await reservations.markSpent([other], 'e'.repeat(64));

    const report = await finished<SyncReport>(await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test'));
    expect(report.accounts[0]!.listed).toBeGreaterThan(0);
    expect(await utxos().findById(held!._id).lean()).toMatchObject({ status: 'reserved', reservedBy: 'registration-sync@run' });
    expect(await utxos().findById(outpointId(other.txid, 0)).lean()).toMatchObject({ status: 'spent' });
  });

  it('rebuilds with other inputs when another spend of its input reaches the node first', async () => {
    await utxos().updateMany({ status: 'available' }, { $set: { status: 'spent', spentBy: 'test-reset' } });
    const contested = await stack.fund(stack.accounts.funding.address, 30_000);
    const spare = await stack.fund(stack.accounts.funding.address, 60_000);
    await finished<SyncReport>(await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test'));

    // Another spender (e.g. an older system holding the same key) spends the contested output after the top-up reserved it and
    // before its split reaches the node: the moment the split goes to the KMS for signing.
    const fundingScript = p2pkhOutputScript(stack.accounts.funding.address, 'test').toHex();
    const chain = chainClientsFromConfig(stack.deps.config);
    let outside: { txid: string } | undefined;
    stack.beforeNextSign(async () => {
      const signed = await signTransaction(
        buildTransaction({
          inputs: [{ txid: contested.txid, vout: 0, satoshis: 30_000, lockingScriptHex: fundingScript, keyIdentifier: 'funding' }],
          outputs: [{ kind: 'p2pkh', address: PrivateKey.fromRandom().toAddress('testnet'), satoshis: 29_000 }],
          minChangeSats: 1,
          feeRateSatPerKb: 100,
          network: 'test',
        }),
        chain.kms,
      );
      expect((await chain.woc.broadcast(signed.hex)).outcome).toBe('success');
      outside = signed;
    });

    const started = await startTopUp(stack.deps.temporal, stack.accounts.funding.keyIdentifier, { requestedBy: 'test' });
    const report = await finished<TopUpReport>(started, 'utxo-topup-rebuilt-after-conflict');

    expect(report.outcome).toBe('completed');
    // First round: the contested output, refused; after the resync, the spare one, although the chain still
    // shows the contested output unspent.
    expect(stack.simulator.simulator.chains.test.spenderOf(spare.txid, 0)?.txid).toBe(report.transaction!.txid);
    expect(stack.simulator.simulator.chains.test.spenderOf(contested.txid, 0)?.txid).toBe(outside!.txid);
    // Never reserved again; spent by the outside tx once some chain view shows that spend.
    const contestedRecord = await utxos().findById(outpointId(contested.txid, 0)).lean();
    expect(contestedRecord?.reservedBy ?? null).toBeNull();
    if (contestedRecord?.status === 'spent') expect(contestedRecord.spentBy).toBe(outside!.txid);
    else expect(contestedRecord?.status).toBe('available');
    const history = await stack.deps.temporal.workflow.getHandle(started.workflowId, started.runId).fetchHistory();
    const reservationRounds = history.events?.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'reserveSplitInputs',
    ).length;
    expect(reservationRounds).toBe(2);
    expect(await utxos().countDocuments({ status: 'reserved', reservedBy: { $regex: '^utxo-topup-' } })).toBe(0);
  });

  it('does not offer an output the chain has never seen, and retires it after three syncs', async () => {
    const phantom = { txid: 'ab'.repeat(32), vout: 0 };
    await createReservations(stack.deps.mongo).ingest(
      [
        {
          ...phantom,
          satoshis: 90_000,
          lockingScriptHex: p2pkhOutputScript(stack.accounts.funding.address, 'test').toHex(),
          blockHeight: null,
        },
      ],
      stack.accounts.funding.keyIdentifier,
    );
    const sync = () => startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test').then(finished<SyncReport>);
    await sync();
    expect(await utxos().findById(outpointId(phantom.txid, 0)).lean()).toMatchObject({ status: 'available', unseenSyncs: 1 });
    const offered = await createReservations(stack.deps.mongo).reserve({
      owner: 'registration-phantom@run',
      slot: 'anchor-input',
      keyIdentifier: stack.accounts.funding.keyIdentifier,
      minSatoshis: 80_000,
      minConfirmations: 0,
      chainHeight: 0,
    });
    expect(offered).toBeNull();
    await sync();
    await sync();
    expect(await utxos().findById(outpointId(phantom.txid, 0)).lean()).toMatchObject({ status: 'spent', spentBy: 'dropped' });
  });

  it('converges after a reorg drops the split: outputs count as unconfirmed until mined again', async () => {
    const before = await finished<SyncReport>(await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test'));
    const latestSplit = await utxos().findOne({ satoshis: 4000, status: 'available' }).lean();
    expect(latestSplit).not.toBeNull();
    const depth = before.chainHeight - latestSplit!.blockHeight! + 1;
    const reorg = await stack.simulator.admin('POST', '/reorg', { network: 'test', depth });
    expect(reorg.status).toBe(200);
    // Blocks keep coming every 300 ms; the split is mined again and the pool sees it confirmed, at its new height.
    await new Promise((r) => setTimeout(r, 1_000));
    await finished<SyncReport>(await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test'));
    const after = await utxos().findById(latestSplit!._id).lean();
    expect(after?.status).toBe('available');
    const tx = stack.simulator.simulator.chains.test.visibleTx(latestSplit!.txid);
    expect(after?.blockHeight ?? null).toBe(tx?.blockHeight ?? null);
  });
});

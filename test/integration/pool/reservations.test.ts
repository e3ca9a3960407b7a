import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { claimModel, reservationModel, utxoModel } from '../../../src/pool/models';
import { createReservations, type ReleaseChecks, type Reservations } from '../../../src/pool/reservations';
import { declaredIndexLeads, readQueryShapes } from '../../support/queryShapes';
import { connectTestDeps, type TestDeps } from '../../support/stack';
import { testEnv } from '../../support/testEnv';

const txid = () => randomBytes(32).toString('hex');
const output = (satoshis: number, blockHeight: number | null = 100) => ({
  txid: txid(),
  vout: 0,
  satoshis,
  lockingScriptHex: '76a914' + '00'.repeat(20) + '88ac',
  blockHeight,
});
const base = { keyIdentifier: 'funding', minSatoshis: 1_000, minConfirmations: 1, chainHeight: 110 };

describe('UTXO reservations on the Mongo-wire database', () => {
  let deps: TestDeps;
  let pool: Reservations;

  beforeAll(async () => {
    deps = await connectTestDeps('test');
    pool = createReservations(deps.mongo);
  });
  afterAll(() => deps.close());
  beforeEach(async () => {
    await utxoModel(deps.mongo).deleteMany({});
    await claimModel(deps.mongo).deleteMany({});
    await reservationModel(deps.mongo).deleteMany({});
  });

  it('gives twenty concurrent workflows distinct UTXOs, never one UTXO twice', async () => {
    await pool.ingest(
      Array.from({ length: 10 }, () => output(5_000)),
      'funding',
    );
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.reserve({ ...base, owner: `wf-${i}`, slot: 'input' })));
    const reserved = results.filter((r) => r !== null).map((r) => r._id);
    expect(reserved).toHaveLength(10);
    expect(new Set(reserved).size).toBe(10);
    expect(await utxoModel(deps.mongo).countDocuments({ status: 'reserved' })).toBe(10);
  });

  it('hands a retried attempt of the same workflow slot the same UTXO, even when the attempts race', async () => {
    await pool.ingest(
      Array.from({ length: 10 }, () => output(5_000)),
      'funding',
    );
    const attempts = await Promise.all(Array.from({ length: 10 }, () => pool.reserve({ ...base, owner: 'wf-retry', slot: 'input' })));
    expect(new Set(attempts.map((a) => a?._id)).size).toBe(1);
    expect(await utxoModel(deps.mongo).countDocuments({ status: 'reserved' })).toBe(1);
  });

  it('counts confirmations from the chain height instead of assuming them', async () => {
    await pool.ingest([output(5_000, null), output(5_000, 110)], 'funding');
    expect(await pool.reserve({ ...base, owner: 'wf-conf', slot: 'input', minConfirmations: 2 })).toBeNull();
    expect(await pool.reserve({ ...base, owner: 'wf-conf', slot: 'input', minConfirmations: 1 })).toMatchObject({ blockHeight: 110 });
  });

  it('releases only after the owner closed and the chain shows the output unspent', async () => {
    await pool.ingest([output(5_000)], 'funding');
    const held = await pool.reserve({ ...base, owner: 'wf-rel', slot: 'input' });
    const checks = (closed: boolean, unspent: boolean): ReleaseChecks => ({
      isOwnerClosed: () => Promise.resolve(closed),
      isUnspentOnChain: () => Promise.resolve(unspent),
    });
    expect(await pool.release('wf-rel', 'input', checks(false, true))).toBe('owner_running');
    expect(await pool.release('wf-rel', 'input', checks(true, false))).toBe('spent_on_chain');
    expect(await utxoModel(deps.mongo).findById(held!._id).lean()).toMatchObject({ status: 'reserved', reservedBy: 'wf-rel' });
    expect(await pool.release('wf-rel', 'input', checks(true, true))).toBe('released');
    expect(await utxoModel(deps.mongo).findById(held!._id).lean()).toMatchObject({ status: 'available', reservedBy: null });
  });

  it('never brings back a reserved or spent output on sync, but updates its block height', async () => {
    const spent = output(5_000, null);
    const reserved = output(5_000, 100);
    await pool.ingest([spent, reserved], 'funding');
    const held = await pool.reserve({ ...base, owner: 'wf-sync', slot: 'input', minSatoshis: 5_000 });
    await pool.markSpent([{ txid: spent.txid, vout: 0 }], 'ab'.repeat(32));
    const { added } = await pool.ingest([{ ...spent, blockHeight: 105 }, reserved], 'funding');
    expect(added).toBe(0);
    expect(await utxoModel(deps.mongo).findById(`${spent.txid}:0`).lean()).toMatchObject({ status: 'spent', blockHeight: 105 });
    expect(await utxoModel(deps.mongo).findById(held!._id).lean()).toMatchObject({ status: 'reserved' });
  });

  it('reserves, spends and gives back a batch by owner: spent outputs keep their claims, the rest are offered again', async () => {
    const outputs = Array.from({ length: 30 }, () => output(2_000));
    await pool.ingest(outputs, 'funding');
    const ids = outputs.map((o) => `${o.txid}:0`);
    expect(await pool.reserveOutpoints('wf-other', [ids[0]!])).toHaveLength(1);

    const held = await pool.reserveOutpoints('wf-batch', ids.slice(0, 20));
    expect(held.map((u) => u._id).sort()).toEqual(ids.slice(1, 20).sort());
    // A retried activity gets the same outputs back.
    expect((await pool.reserveOutpoints('wf-batch', ids.slice(0, 20))).map((u) => u._id)).toEqual(held.map((u) => u._id));

    // The spend covers ten of its outputs and one it never held (recorded one by one).
    const spent = [...held.slice(0, 10).map((u) => u._id), ids[25]!];
    const outpoints = spent.map((id) => ({ txid: id.slice(0, 64), vout: 0 }));
    await pool.markSpent(outpoints, 'cd'.repeat(32), 'wf-batch');
    await pool.markSpent(outpoints, 'cd'.repeat(32), 'wf-batch');
    const utxos = utxoModel(deps.mongo);
    expect(await utxos.countDocuments({ status: 'spent', spentBy: 'cd'.repeat(32) })).toBe(11);
    expect(await claimModel(deps.mongo).countDocuments({ _id: { $in: spent } })).toBe(11);
    expect(await reservationModel(deps.mongo).countDocuments({ owner: 'wf-batch' })).toBe(9);

    expect(await pool.giveBack('wf-batch')).toBe(9);
    expect(await pool.giveBack('wf-batch')).toBe(0);
    const givenBack = held.slice(10).map((u) => u._id);
    expect(await utxos.countDocuments({ _id: { $in: givenBack }, status: 'available', reservedBy: null })).toBe(9);
    expect(await claimModel(deps.mongo).countDocuments({ _id: { $in: givenBack } })).toBe(0);
    expect(await claimModel(deps.mongo).countDocuments({ _id: { $in: spent } })).toBe(11);
    expect(await reservationModel(deps.mongo).countDocuments({ owner: 'wf-batch' })).toBe(0);
    expect(await utxos.findById(ids[0]).lean()).toMatchObject({ status: 'reserved', reservedBy: 'wf-other' });

    // What was given back can be reserved again; what was spent never can.
    expect(await pool.reserveOutpoints('wf-next', [...givenBack, ...spent])).toHaveLength(9);
  });

  it('ingests new outputs beside known live and spent ones, counting only what it added', async () => {
    const known = Array.from({ length: 5 }, () => output(3_000, null));
    await pool.ingest(known, 'funding');
    await pool.markSpent([{ txid: known[0]!.txid, vout: 0 }], 'ef'.repeat(32));
    const fresh = Array.from({ length: 7 }, () => output(3_000, 120));
    const { added } = await pool.ingest([...known.map((o) => ({ ...o, blockHeight: 120 })), ...fresh], 'funding');
    expect(added).toBe(7);
    const utxos = utxoModel(deps.mongo);
    expect(await utxos.countDocuments({ status: 'available', blockHeight: 120 })).toBe(11);
    expect(await utxos.findById(`${known[0]!.txid}:0`).lean()).toMatchObject({ status: 'spent', blockHeight: 120 });
  });

  it('never selects pool outputs by `$in` alone, which FerretDB would filter over every document', () => {
    const leads = declaredIndexLeads();
    const pooled = readQueryShapes(path.join(testEnv('scratchDir'), 'query-shapes')).filter(
      (s) => s.caller === 'src/pool/reservations.ts' || s.caller === 'activities/pool/poolActivities.ts',
    );
    const withSets = pooled.filter((s) => Object.values(s.fields).some((kind) => kind === 'in' || kind === 'not'));
    // The operations above send such filters: the check below has something to check.
    expect(withSets.length).toBeGreaterThan(3);
    const unanchored = withSets.filter(
      (s) => !Object.entries(s.fields).some(([field, kind]) => kind === 'eq' && leads.get(s.collection)?.has(field)),
    );
    expect(unanchored).toEqual([]);
  });
});

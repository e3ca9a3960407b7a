import { randomBytes } from 'node:crypto';
import { claimModel, reservationModel, utxoModel } from '../../../src/pool/models';
import { createReservations, type ReleaseChecks, type Reservations } from '../../../src/pool/reservations';
import { connectTestDeps, type TestDeps } from '../../support/stack';

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
});

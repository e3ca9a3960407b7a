import { createApp } from '../../../api/app';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import { utxoModel } from '../../../src/pool/models';
import { patchModel } from '../../../src/registration/models';
import { checkProofBundle, type ProofBundle } from '../../../src/registration/proofBundle';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { PrivateKey } from '@bsv/sdk';

describe('registrations under load and chain faults (batch anchoring)', () => {
  let stack: PoolStack;
  let server: Listening;
  let api: ReturnType<typeof apiClient>;
  const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');

  beforeAll(async () => {
    stack = await startPoolStack(
      {
        FEE_PER_KB: '100',
        ANCHOR_CONFIRMATIONS: '2',
        ANCHOR_BATCH_MAX_RECORDS: '40',
        ANCHOR_BATCH_MAX_WAIT_SECONDS: '1',
        ADMIN_API_MAX: '100000',
        PUBLIC_API_MAX: '100000',
        WOC_RETRIES: '4',
      },
      { blockIntervalMs: 400 },
    );
    server = await listen(createApp(stack.deps));
    api = apiClient(server.baseUrl, stack.deps.config.auth.apiKey);
    await fundAndSyncPool(stack, 12);
  });
  afterAll(async () => {
    await server?.close();
    await stack?.close();
  });

  it('anchors 100 concurrent registrations of distinct uids through 5xx, 429, lost broadcasts and propagation lag, spending no output twice', async () => {
    await stack.simulator.setFaults({
      error5xxRate: 0.05,
      error429Rate: 0.05,
      retryAfterSeconds: 1,
      acceptThenForget: 0.3,
      error5xxAfterAcceptRate: 0.3,
      propagationLagMs: 300,
    });
    const uids = Array.from({ length: 100 }, (_, i) => `PP-LOAD-${String(i).padStart(3, '0')}`);
    const accepted = await Promise.all(uids.map((uid) => api.adminPost('/v1/patches', registrationBody(uid, owner))));
    expect(accepted.map((a) => a.status)).toEqual(uids.map(() => 202));
    const done = await Promise.all(accepted.map((a) => api.waitDone(a.body.statusUrl as string, 240_000)));
    await stack.simulator.setFaults({
      error5xxRate: 0,
      error429Rate: 0,
      acceptThenForget: 0,
      error5xxAfterAcceptRate: 0,
      propagationLagMs: 0,
    });
    expect(done.filter((d) => d.status !== 'anchored')).toEqual([]);

    // Batches: far fewer anchor transactions than records, each committing to its batch's root. How many depends
    // on how fast records arrive against how fast a batch goes out (group commit), hence a bound, not a count.
    const patches = await patchModel(stack.deps.mongo)
      .find({ _id: { $in: uids } })
      .lean();
    const txids = new Set(patches.map((p) => p.anchor!.txid));
    expect(txids.size).toBeGreaterThanOrEqual(3);
    expect(txids.size).toBeLessThanOrEqual(uids.length / 4);
    const woc = chainClientsFromConfig(stack.deps.config).woc;
    for (const uid of uids.slice(0, 100)) {
      const bundle = (await api.get(`/v1/patches/${uid}/proof`)).body as unknown as ProofBundle;
      expect(await checkProofBundle(bundle, { woc, requiredConfirmations: 2 })).toMatchObject({ status: 'authentic' });
    }
    // Every pool output was spent by at most one transaction, and nothing is left reserved.
    const spent = await utxoModel(stack.deps.mongo)
      .find({ spentBy: { $in: [...txids] } })
      .lean();
    expect(spent).toHaveLength(txids.size);
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
  }, 300_000);

  it('ends anchored when the anchoring block is reorganised away', async () => {
    const accepted = await api.adminPost('/v1/patches', registrationBody('PP-REORG-1', owner));
    // Wait until the anchor transaction is in a block (the batch then waits for its second confirmation).
    const woc = chainClientsFromConfig(stack.deps.config).woc;
    let txid: string | undefined;
    for (let i = 0; i < 300 && !txid; i++) {
      const status = (await api.adminGet(accepted.body.statusUrl as string)).body as { txid?: string };
      if (status.txid && ((await woc.getTx(status.txid))?.confirmations ?? 0) >= 1) txid = status.txid;
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(txid).toMatch(/^[0-9a-f]{64}$/);
    const reorg = await stack.simulator.admin('POST', '/reorg', { depth: 1, network: 'test' });
    expect(reorg.status).toBe(200);
    const done = await api.waitDone(accepted.body.statusUrl as string, 120_000);
    expect(done).toMatchObject({ status: 'anchored', txid });
    expect(((await api.get('/v1/patches/PP-REORG-1/verify')).body as { status: string }).status).toBe('authentic');
  }, 180_000);
});

import { PrivateKey } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { reservationModel, utxoModel } from '../../../src/pool/models';
import { patchModel } from '../../../src/registration/models';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

/**
 * Backpressure, not failure: 200 registrations at once in single mode, each needing a pool output of its own, against
 * a pool of 20. Registrations wait for change outputs to confirm and rejoin the pool; none fails for funds. Past the
 * configured queue bound the API refuses new work with 503 and Retry-After.
 */
describe('registration backpressure', () => {
  let stack: PoolStack;
  let server: Listening;
  let api: ReturnType<typeof apiClient>;
  const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');

  beforeAll(async () => {
    stack = await startPoolStack({ FEE_PER_KB: '100', ANCHOR_CONFIRMATIONS: '1', ANCHOR_MODE: 'single' }, { blockIntervalMs: 300 });
    server = await listen(createApp(stack.deps));
    api = apiClient(server.baseUrl, stack.deps.config.auth.apiKey);
    await fundAndSyncPool(stack, 20);
  });
  afterAll(async () => {
    await server?.close();
    await stack?.close();
  });

  it('anchors 200 concurrent single-mode registrations with a pool of 20 outputs, none failing for funds', async () => {
    const uids = Array.from({ length: 200 }, (_, i) => `BP-${String(i).padStart(3, '0')}`);
    // As a client does: a 503 (a dependency past its deadline in this burst) or a dropped connection is sent again
    // after a pause, with the same Idempotency-Key, so a start that went through answers 202 again, not 409.
    const register = async (uid: string): Promise<Awaited<ReturnType<typeof api.adminPost>>> => {
      for (let attempt = 1; ; attempt++) {
        const answer = await api
          .adminPost('/v1/patches', registrationBody(uid, owner), { 'idempotency-key': `bp-${uid}` })
          .catch((err: unknown) => {
            if (attempt === 8) throw err;
            return undefined;
          });
        if (answer && (answer.status !== 503 || attempt === 8)) return answer;
        if (answer) expect(answer.body).toMatchObject({ error: { code: 'DEPENDENCY_UNAVAILABLE' } });
        await new Promise((r) => setTimeout(r, 1_000));
      }
    };
    const accepted = await Promise.all(uids.map(register));
    expect(accepted.map((a) => a.status)).toEqual(uids.map(() => 202));

    const outcomes = [];
    for (const answer of accepted) outcomes.push(await api.waitDone(String(answer.body.statusUrl), 600_000));
    expect(outcomes.filter((o) => o.status !== 'anchored').map((o) => `${o.status}: ${o.lastError ?? ''}`)).toEqual([]);
    const patches = await patchModel(stack.deps.mongo)
      .find({ _id: { $in: uids } })
      .lean();
    // Single mode: one transaction each, 200 in all, each spending one pool output once.
    expect(new Set(patches.map((p) => p.anchor!.txid)).size).toBe(200);
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
    expect(await reservationModel(stack.deps.mongo).countDocuments({})).toBe(0);
  }, 660_000);

  it('answers 503 with Retry-After past the queue bound, storing nothing', async () => {
    const bounded = await listen(
      createApp({ ...stack.deps, config: { ...stack.deps.config, anchoring: { ...stack.deps.config.anchoring, queueLimit: 1 } } }),
    );
    try {
      // One registration already waits and the bound is one: the next is refused before anything is stored.
      const bouncer = apiClient(bounded.baseUrl, stack.deps.config.auth.apiKey);
      await patchModel(stack.deps.mongo).collection.insertOne({ _id: 'BP-WAITING' as never, status: 'pending' });
      const refused = await fetch(`${bounded.baseUrl}/v1/patches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': stack.deps.config.auth.apiKey },
        body: JSON.stringify(registrationBody('BP-REFUSED', owner)),
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('30');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('QUEUE_FULL');
      const batch = await bouncer.call('POST', '/v1/patch-batches', JSON.stringify([registrationBody('BP-REFUSED-2', owner)]), {
        'content-type': 'application/json',
        'x-api-key': stack.deps.config.auth.apiKey,
        'idempotency-key': 'queue-full',
      });
      expect(batch.status).toBe(503);
      expect(await patchModel(stack.deps.mongo).countDocuments({ _id: { $in: ['BP-REFUSED', 'BP-REFUSED-2'] } })).toBe(0);
      // A uid registered already is answered as before, full queue or not: the bound is on new work only.
      expect((await bouncer.adminPost('/v1/patches', registrationBody('BP-000', owner))).status).toBe(409);
    } finally {
      await patchModel(stack.deps.mongo).deleteOne({ _id: 'BP-WAITING' });
      await bounded.close();
    }
  });
});

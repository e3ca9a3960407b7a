import { PublicKey } from '@bsv/sdk';
import { waitFor } from '../../support/workerProcesses';
import { createApp } from '../../../api/app';
import { verdictCacheFromConfig } from '../../../api/verdictCache';
import { announceVerdictChange } from '../../../src/registration/verdictChanges';
import { startChainFollower } from '../../../src/chainFollower/launch';
import { chainFollowerWorkflowId } from '../../../src/chainFollower/ids';
import { anchorTxModel, blockHeaderModel, headerId, type AnchorTxDocument } from '../../../src/chainFollower/models';
import { patchModel } from '../../../src/registration/models';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

interface VerifyBody {
  status: string;
  anchor?: { txid: string; blockHeight: number | null; confirmations: number };
  chain?: { source: string; tipHeight: number | null; chainTipAge: number | null };
}

describe('the chain follower on the chain simulator, and verification from local state', () => {
  let stack: PoolStack;
  let api: Listening;
  let client: ReturnType<typeof apiClient>;
  let owner: string;
  let miner: NodeJS.Timeout | undefined;

  const startMining = () => {
    miner ??= setInterval(() => void stack.simulator.mine(1).catch(() => undefined), 300);
  };
  const stopMining = () => {
    clearInterval(miner);
    miner = undefined;
  };
  const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000) =>
    waitFor(what, probe, timeoutMs, { intervalMs: 200 });
  const provenTx = (txid: string, notInBlock?: string) =>
    until(`${txid} proven`, async () => {
      const doc = await anchorTxModel(stack.deps.mongo).findById(txid).lean();
      return doc?.state === 'proven' && doc.blockHash !== notInBlock ? doc : undefined;
    });
  const register = async (uid: string): Promise<string> => {
    const answer = await client.adminPost('/v1/patches', registrationBody(uid, owner));
    expect(answer.status).toBe(202);
    expect((await client.waitDone(String(answer.body.statusUrl))).status).toBe('anchored');
    return (await patchModel(stack.deps.mongo).findById(uid).lean())!.anchor!.txid;
  };
  const verify = async (uid: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${api.baseUrl}/v1/patches/${uid}/verify`, { headers });
    return { res, body: (res.status === 200 ? await res.json() : undefined) as VerifyBody };
  };
  const verifyChainRequests = async () =>
    (await stack.deps.metrics.chainRequestsByCaller.get()).values
      .filter((v) => v.labels.caller === 'verify')
      .reduce((n, v) => n + v.value, 0);

  beforeAll(async () => {
    stack = await startPoolStack({
      FEE_PER_KB: '100',
      ANCHOR_CONFIRMATIONS: '1',
      ANCHOR_BATCH_MAX_WAIT_SECONDS: '1',
      CHAIN_FOLLOWER_POLL_SECONDS: '1',
    });
    api = await listen(createApp(stack.deps));
    client = apiClient(api.baseUrl, stack.deps.config.auth.apiKey);
    owner = PublicKey.fromString(stack.kms.keys.ensure('owner-test').pubKeyHex).toAddress('testnet');
    await fundAndSyncPool(stack, 4);
    startMining();
    await startChainFollower(stack.deps.temporal, stack.deps.config);
  });
  afterAll(async () => {
    stopMining();
    await api?.close();
    await stack?.close();
  });

  it('verifies proven patches from MongoDB alone: no chain request, confirmations from the local tip, strong ETag and 304', async () => {
    const uids = ['FOLLOW-1', 'FOLLOW-2', 'FOLLOW-3'];
    const txids = [];
    for (const uid of uids) txids.push(await register(uid));
    for (const txid of txids) await provenTx(txid);
    // A still chain, so the answer only changes if the follower gets something wrong.
    stopMining();
    await new Promise((r) => setTimeout(r, 2_500));
    const before = await verifyChainRequests();
    for (const uid of uids) {
      const { res, body } = await verify(uid);
      expect(res.status).toBe(200);
      expect(body.status).toBe('authentic');
      expect(body.chain).toMatchObject({ source: 'local' });
      expect(body.anchor!.confirmations).toBe(body.chain!.tipHeight! - body.anchor!.blockHeight! + 1);
      expect(res.headers.get('cache-control')).toMatch(/^public, max-age=\d+/);
      const etag = res.headers.get('etag')!;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
      // As a cache revalidates (fetch adds `Cache-Control: no-cache` to a conditional request unless told otherwise).
      const again = await verify(uid, { 'if-none-match': etag, 'cache-control': 'max-age=0' });
      expect(again.res.status).toBe(304);
    }
    const proof = await fetch(`${api.baseUrl}/v1/patches/FOLLOW-1/proof`);
    const notModified = await fetch(`${api.baseUrl}/v1/patches/FOLLOW-1/proof`, {
      headers: { 'if-none-match': proof.headers.get('etag')!, 'cache-control': 'max-age=0' },
    });
    expect(notModified.status).toBe(304);
    expect(await verifyChainRequests()).toBe(before);
    startMining();
  });

  it('keeps a settled verdict in the API process until a change is announced, and never a not-found or pending one', async () => {
    const verdicts = verdictCacheFromConfig({
      config: { verification: { cacheTtlMs: 600_000, cacheMaxEntries: 100 } },
      redis: stack.deps.redis,
      logger: stack.deps.logger,
    });
    const cached = await listen(createApp({ ...stack.deps, verdicts }));
    const verifyCached = async (uid: string) => {
      const res = await fetch(`${cached.baseUrl}/v1/patches/${uid}/verify`);
      return { etag: res.headers.get('etag'), body: (await res.json()) as VerifyBody };
    };
    try {
      expect((await verifyCached('FOLLOW-CACHE')).body.status).toBe('not_found');
      await provenTx(await register('FOLLOW-CACHE'));
      const settled = await verifyCached('FOLLOW-CACHE');
      expect(settled.body.status).toBe('authentic');
      expect(verdicts.size).toBe(1);

      // The stored owner no longer matches the proven chain of records. Nothing announced it, so the kept verdict
      // is still served (confirmations brought up to the local tip); once announced, the database is read again.
      await patchModel(stack.deps.mongo).updateOne({ _id: 'FOLLOW-CACHE' }, { $set: { owner: 'someone-else' } });
      try {
        expect((await verify('FOLLOW-CACHE')).body.status).toBe('invalid');
        const kept = await verifyCached('FOLLOW-CACHE');
        expect(kept.body.status).toBe('authentic');
        expect(kept.body.anchor!.confirmations).toBe(kept.body.chain!.tipHeight! - kept.body.anchor!.blockHeight! + 1);
        await announceVerdictChange(stack.deps.redis, ['FOLLOW-CACHE']);
        await until('the announced change to reach the cache', async () =>
          (await verifyCached('FOLLOW-CACHE')).body.status === 'invalid' ? true : undefined,
        );
      } finally {
        await patchModel(stack.deps.mongo).updateOne({ _id: 'FOLLOW-CACHE' }, { $set: { owner } });
      }
      await announceVerdictChange(stack.deps.redis, 'all');
      await until('every verdict forgotten', async () =>
        (await verifyCached('FOLLOW-CACHE')).body.status === 'authentic' ? true : undefined,
      );
    } finally {
      await cached.close();
      verdicts.stop();
    }
  });

  it('keeps verifying with 200 and a growing chainTipAge while the chain service is down', async () => {
    await stack.simulator.setFaults({ error5xxRate: 1 });
    try {
      // Past one age step without a successful sync.
      await new Promise((r) => setTimeout(r, 12_000));
      const before = await verifyChainRequests();
      const { res, body } = await verify('FOLLOW-1');
      expect(res.status).toBe(200);
      expect(body.status).toBe('authentic');
      expect(body.chain!.chainTipAge).toBeGreaterThanOrEqual(10);
      expect(await verifyChainRequests()).toBe(before);
    } finally {
      await stack.simulator.setFaults({ error5xxRate: 0 });
    }
  });

  it('rolls back a reorg of depth 2, proves the anchor tx again in its new block, and loses no record', async () => {
    stopMining();
    const answer = await client.adminPost('/v1/patches', registrationBody('FOLLOW-REORG', owner));
    expect(answer.status).toBe(202);
    const txid = await until('the anchor tx in the mempool', async () => {
      const patch = await patchModel(stack.deps.mongo).findById('FOLLOW-REORG').lean();
      const status = (await stack.simulator.admin('GET', '/status')).body as { test: { mempool: string[] } };
      return patch?.anchor && status.test.mempool.includes(patch.anchor.txid) ? patch.anchor.txid : undefined;
    });
    await stack.simulator.mine(2);
    expect((await client.waitDone(String(answer.body.statusUrl))).status).toBe('anchored');
    const first: AnchorTxDocument = await provenTx(txid);
    const { test: tipBefore } = (await stack.simulator.admin('GET', '/status')).body as { test: { height: number } };
    expect(first.blockHeight).toBe(tipBefore.height - 1);

    const reorg = await stack.simulator.admin('POST', '/reorg', { depth: 2 });
    expect(reorg.body).toMatchObject({ returnedToMempool: expect.arrayContaining([txid]) as unknown });
    // Rolled back: the tx's proof is cleared, and verification says pending rather than a stale authentic.
    await until('the proof cleared', async () =>
      (await anchorTxModel(stack.deps.mongo).findById(txid).lean())?.state === 'unproven' ? true : undefined,
    );
    expect((await verify('FOLLOW-REORG')).body.status).toBe('pending');
    const offChain = await patchModel(stack.deps.mongo).findById('FOLLOW-REORG').lean();
    expect(offChain).toMatchObject({ status: 'anchoring', anchor: { txid, leftChainAt: expect.any(Date) as unknown } });

    await stack.simulator.mine(3);
    const second = await provenTx(txid, first.blockHash!);
    expect(second.blockHeight).toBe(first.blockHeight);
    expect(second.blockHash).not.toBe(first.blockHash);
    const header = await blockHeaderModel(stack.deps.mongo).findById(headerId('test', second.blockHeight!)).lean();
    expect(header).toMatchObject({ hash: second.blockHash, anchorTxids: [txid] });
    const { body } = await verify('FOLLOW-REORG');
    expect(body).toMatchObject({ status: 'authentic', anchor: { txid, blockHeight: second.blockHeight } });
    for (const uid of ['FOLLOW-1', 'FOLLOW-2', 'FOLLOW-3', 'FOLLOW-REORG']) {
      expect((await patchModel(stack.deps.mongo).findById(uid).lean())?.status).toBe('anchored');
    }
    const backOnChain = await patchModel(stack.deps.mongo).findById('FOLLOW-REORG').lean();
    expect(backOnChain!.anchor).toMatchObject({ txid, blockHeight: second.blockHeight });
    expect(backOnChain!.anchor).not.toHaveProperty('leftChainAt');
    startMining();
    const follower = stack.deps.temporal.workflow.getHandle(chainFollowerWorkflowId('test'));
    expect((await follower.describe()).status.name).toBe('RUNNING');
    await recordHistoryIfAsked(stack.deps.temporal, chainFollowerWorkflowId('test'), 'chain-follower-reorg', undefined, { running: true });
  });
  it('broadcasts again an anchor tx that a reorg evicted and the chain service forgot, and anchors its records again', async () => {
    stopMining();
    const answer = await client.adminPost('/v1/patches', registrationBody('FOLLOW-EVICTED', owner));
    expect(answer.status).toBe(202);
    const txid = await until('the anchor tx in the mempool', async () => {
      const patch = await patchModel(stack.deps.mongo).findById('FOLLOW-EVICTED').lean();
      const status = (await stack.simulator.admin('GET', '/status')).body as { test: { mempool: string[] } };
      return patch?.anchor && status.test.mempool.includes(patch.anchor.txid) ? patch.anchor.txid : undefined;
    });
    await stack.simulator.mine(1);
    expect((await client.waitDone(String(answer.body.statusUrl))).status).toBe('anchored');
    const first = await provenTx(txid);

    // As if the winning branch held a conflicting tx: the node forgets ours entirely.
    const reorg = await stack.simulator.admin('POST', '/reorg', { depth: 1, drop: [txid] });
    expect(reorg.body).toMatchObject({ dropped: [txid] });
    const rebroadcast = await until('the follower to broadcast the tx again', async () => {
      const doc = await anchorTxModel(stack.deps.mongo).findById(txid).lean();
      return doc?.rebroadcast ?? undefined;
    });
    expect(rebroadcast).toMatchObject({ outcome: 'success' });
    expect((await patchModel(stack.deps.mongo).findById('FOLLOW-EVICTED').lean())?.status).toBe('anchoring');
    expect((await verify('FOLLOW-EVICTED')).body.status).toBe('pending');

    await stack.simulator.mine(2);
    const second = await provenTx(txid, first.blockHash!);
    await until('the record anchored again', async () =>
      (await patchModel(stack.deps.mongo).findById('FOLLOW-EVICTED').lean())?.status === 'anchored' ? true : undefined,
    );
    expect((await verify('FOLLOW-EVICTED')).body).toMatchObject({ status: 'authentic', anchor: { txid, blockHeight: second.blockHeight } });
    startMining();
  });
});

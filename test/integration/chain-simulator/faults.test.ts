import { createWocClient, type WocClientOptions } from '../../../src/woc/client';
import { type RunningSimulator, startSimulator } from '../../support/chainSimulator';
import { newKey, payTo, spend } from '../../support/chainTransactions';

/** The WOC client against each fault the simulator injects, over a real socket. */
let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(() => sim.stop());
afterEach(async () => {
  await sim.admin('DELETE', '/faults');
});

/** A client that really sleeps and records each wait, so tests can check Retry-After was honoured. */
function client(overrides: Partial<WocClientOptions & { timeoutMs: number; retries: number }> = {}) {
  const waits: number[] = [];
  const woc = createWocClient({
    network: 'test',
    baseUrl: sim.baseUrl,
    timeoutMs: 2_000,
    retries: 2,
    requestsPerSecond: 1_000,
    sleep: (ms) => {
      waits.push(ms);
      return new Promise((resolve) => setTimeout(resolve, ms));
    },
    ...overrides,
  });
  return { woc, waits };
}

async function signedSpend(satoshis = 50_000) {
  const coin = await sim.faucet(newKey(), satoshis);
  return spend([coin], [payTo(newKey(), satoshis - 1_000)]);
}

describe('fault injection seen through the WOC client', () => {
  it('reads back what was set, and refuses an unknown fault', async () => {
    await sim.setFaults({ latencyMs: 5, error429Rate: 0.25 });
    expect((await sim.admin('GET', '/faults')).body).toMatchObject({ latencyMs: 5, error429Rate: 0.25, error5xxRate: 0 });
    expect(await sim.admin('PUT', '/faults', { lagMs: 1 })).toEqual({ status: 400, body: { problems: ['lagMs: unknown fault'] } });
  });

  it('answers within the timeout despite added latency', async () => {
    await sim.setFaults({ latencyMs: 300 });
    const { woc } = client();
    const started = Date.now();
    expect((await woc.getChainInfo()).chain).toBe('test');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('times out when the latency exceeds the timeout, as a retryable error', async () => {
    await sim.setFaults({ latencyMs: 400 });
    const { woc } = client({ timeoutMs: 100, retries: 0 });
    await expect(woc.getChainInfo()).rejects.toMatchObject({ kind: 'timeout', retryable: true });
  });

  it('retries through two 503s and broadcasts successfully', async () => {
    const tx = await signedSpend();
    await sim.setFaults({ error5xxNext: 2 });
    const { woc, waits } = client();
    expect(await woc.broadcast(tx.toHex())).toMatchObject({ outcome: 'success', alreadyKnown: false });
    expect(waits).toHaveLength(2);
    expect((await sim.admin('GET', '/faults')).body).toMatchObject({ error5xxNext: 0 });
    expect(await woc.getTx(tx.id('hex'))).toMatchObject({ confirmations: 0 });
  });

  it('answers retryable when 503s outlast the retries, and nothing reached the mempool', async () => {
    const tx = await signedSpend();
    await sim.setFaults({ error5xxNext: 3 });
    const { woc } = client();
    expect(await woc.broadcast(tx.toHex())).toMatchObject({ outcome: 'retryable', httpStatus: 503 });
    expect(await woc.getTx(tx.id('hex'))).toBeNull();
  });

  it('honours a 429 Retry-After before retrying', async () => {
    await sim.setFaults({ error429Next: 1, retryAfterSeconds: 1 });
    const { woc, waits } = client();
    const started = Date.now();
    expect((await woc.getChainInfo()).chain).toBe('test');
    expect(waits).toEqual([1_000]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  it('shows an accepted-then-forgotten broadcast as a tx the chain later does not know', async () => {
    const tx = await signedSpend();
    await sim.setFaults({ acceptThenForget: 1 });
    const { woc } = client();
    expect(await woc.broadcast(tx.toHex())).toMatchObject({ outcome: 'success', alreadyKnown: false });
    expect(await woc.getTx(tx.id('hex'))).toBeNull();
    expect(await woc.getTxStatuses([tx.id('hex')])).toEqual([{ txid: tx.id('hex'), state: 'unknown', confirmations: 0 }]);
    // Rebroadcasting is the cure: the node never had it, so it is accepted as new.
    await sim.setFaults({ acceptThenForget: 0 });
    expect(await woc.broadcast(tx.toHex())).toMatchObject({ outcome: 'success', alreadyKnown: false });
    expect(await woc.getTx(tx.id('hex'))).not.toBeNull();
  });

  it('turns a 500 after acceptance into success on retry, the node answering "already in the mempool"', async () => {
    const tx = await signedSpend();
    await sim.setFaults({ error5xxAfterAcceptRate: 1 });
    const { woc } = client();
    expect(await woc.broadcast(tx.toHex())).toMatchObject({
      outcome: 'success',
      alreadyKnown: true,
      reason: 'Transaction already in the mempool',
    });
  });

  it('answers Missing inputs for a child sent during the parent propagation lag, then accepts it after the lag', async () => {
    const owner = newKey();
    const coin = await sim.faucet(owner, 50_000);
    const next = newKey();
    const parent = await spend([coin], [payTo(next, 49_000)]);
    const child = await spend([{ txid: parent.id('hex'), vout: 0, satoshis: 49_000, key: next }], [payTo(newKey(), 48_000)]);
    await sim.setFaults({ propagationLagMs: 700 });
    const { woc } = client();
    expect((await woc.broadcast(parent.toHex())).outcome).toBe('success');
    // The parent was accepted at or before this instant, so it is visible 700 ms later at the latest.
    const acceptedBy = Date.now();
    expect(await woc.broadcast(child.toHex())).toMatchObject({ outcome: 'missing_inputs', reason: 'Missing inputs' });
    expect(await woc.getTx(parent.id('hex'))).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, acceptedBy + 750 - Date.now())));
    expect(await woc.getTx(parent.id('hex'))).not.toBeNull();
    expect(await woc.broadcast(child.toHex())).toMatchObject({ outcome: 'success', alreadyKnown: false });
  });

  it('returns the txs of a reorged block to the mempool: confirmations drop to 0 and come back with a new block', async () => {
    const tx = await signedSpend();
    const { woc } = client();
    await woc.broadcast(tx.toHex());
    const { blocks } = await sim.mine(1);
    const txid = tx.id('hex');
    expect(await woc.getTx(txid)).toMatchObject({ confirmations: 1, blockHash: blocks[0]!.hash });

    // Earlier tests in this file left their txs in that block too; they all return.
    const reorg = await sim.admin('POST', '/reorg', { depth: 1 });
    expect(reorg).toMatchObject({
      status: 200,
      body: { disconnected: [blocks[0]!.hash], returnedToMempool: expect.arrayContaining([txid]), dropped: [] },
    });
    const after = await woc.getTx(txid);
    expect(after).toMatchObject({ confirmations: 0 });
    expect(after).not.toHaveProperty('blockHash');
    expect(await woc.getTxStatuses([txid])).toEqual([{ txid, state: 'mempool', confirmations: 0 }]);
    expect(await woc.getMerkleProof(txid)).toBeNull();
    expect(await woc.getBlockHeader(blocks[0]!.hash)).toBeNull();

    const remined = await sim.mine(1);
    expect(remined.blocks[0]!.hash).not.toBe(blocks[0]!.hash);
    expect(await woc.getTx(txid)).toMatchObject({ confirmations: 1, blockHash: remined.blocks[0]!.hash });
  });
});

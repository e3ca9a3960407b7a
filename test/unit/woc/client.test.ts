import { Hash, Utils } from '@bsv/sdk';
import { createWocClient, type WocClientOptions } from '../../../src/woc/client';
import { WocError } from '../../../src/woc/errors';

const API_KEY = 'woc-key-4f1c2b9a8d7e6f5a4b3c2d1e';
const RAW_TX = '0100000001' + 'ab'.repeat(32) + '00000000' + '00' + 'ffffffff' + '01' + 'e803000000000000' + '00' + '00000000';
const TXID = Utils.toHex(Hash.hash256(Utils.toArray(RAW_TX, 'hex')).reverse());

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

type Reply = { status: number; body?: string; headers?: Record<string, string> } | Error;

/** A fetch that records each request and answers from a script, one reply per attempt. */
function scriptedFetch(replies: Reply[]) {
  const calls: Call[] = [];
  const fetchImpl = ((url: string, init: RequestInit) => {
    calls.push({
      url,
      method: init.method ?? 'GET',
      headers: init.headers as Record<string, string>,
      body: init.body as string | undefined,
    });
    const reply = replies.shift();
    if (!reply) throw new Error('no scripted reply left');
    if (reply instanceof Error) return Promise.reject(reply);
    return Promise.resolve(new Response(reply.body ?? '', { status: reply.status, headers: reply.headers ?? {} }));
  }) as typeof fetch;
  return { fetchImpl, calls };
}

function client(
  replies: Reply[],
  overrides: Partial<WocClientOptions & { apiKey: string; retries: number; timeoutMs: number; requestsPerSecond: number }> = {},
) {
  const scripted = scriptedFetch(replies);
  const sleeps: number[] = [];
  const woc = createWocClient({
    network: 'test',
    baseUrl: 'http://woc.example/',
    timeoutMs: 1_000,
    retries: 2,
    requestsPerSecond: 1_000,
    fetchImpl: scripted.fetchImpl,
    sleep: (ms) => (sleeps.push(ms), Promise.resolve()),
    random: () => 0.5,
    ...overrides,
  });
  return { woc, calls: scripted.calls, sleeps };
}

const json = (value: unknown, status = 200): Reply => ({
  status,
  body: JSON.stringify(value),
  headers: { 'content-type': 'application/json' },
});
const networkError = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });

describe('WOC client requests', () => {
  it('calls /v1/bsv/{network} under the base URL and sends the API key as the Authorization header only when configured', async () => {
    const withKey = client([json({ chain: 'test', blocks: 7, headers: 7, bestblockhash: 'aa' })], { apiKey: API_KEY });
    expect(await withKey.woc.getChainInfo()).toEqual({ chain: 'test', blocks: 7, headers: 7, bestBlockHash: 'aa' });
    expect(withKey.calls[0]!.url).toBe('http://woc.example/v1/bsv/test/chain/info');
    expect(withKey.calls[0]!.headers.authorization).toBe(API_KEY);

    const withoutKey = client([json({ chain: 'test', blocks: 7, headers: 7, bestblockhash: 'aa' })]);
    await withoutKey.woc.getChainInfo();
    expect(withoutKey.calls[0]!.headers).not.toHaveProperty('authorization');
  });

  it('retries 5xx and network errors with full-jitter backoff, then succeeds', async () => {
    const { woc, calls, sleeps } = client([
      { status: 503 },
      networkError(),
      json({ chain: 'test', blocks: 1, headers: 1, bestblockhash: 'bb' }),
    ]);
    expect((await woc.getChainInfo()).blocks).toBe(1);
    expect(calls).toHaveLength(3);
    // random() = 0.5 of the caps 200 ms and 400 ms.
    expect(sleeps).toEqual([100, 200]);
  });

  it('waits out a 429 for exactly its Retry-After, in seconds or as a date', async () => {
    const now = Date.parse('2026-03-01T12:00:00Z');
    const { woc, sleeps } = client(
      [
        { status: 429, headers: { 'retry-after': '2' } },
        { status: 429, headers: { 'retry-after': 'Sun, 01 Mar 2026 12:00:03 GMT' } },
        json({ chain: 'test', blocks: 1, headers: 1, bestblockhash: 'bb' }),
      ],
      { now: () => now },
    );
    await woc.getChainInfo();
    expect(sleeps).toEqual([2_000, 3_000]);
  });

  it('does not sleep through a Retry-After beyond its limit: it fails at once as retryable', async () => {
    const { woc, calls, sleeps } = client([{ status: 429, headers: { 'retry-after': '120' } }], { maxRetryAfterMs: 30_000 });
    const err = await woc.getChainInfo().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WocError);
    expect(err).toMatchObject({ kind: 'rate_limited', retryable: true, details: { status: 429, retryAfterMs: 120_000, attempts: 1 } });
    expect(calls).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('gives up after retries + 1 attempts with a retryable error naming the last failure', async () => {
    const { woc, calls } = client([{ status: 500 }, { status: 502 }, { status: 503, body: 'upstream down' }]);
    const err = await woc.getChainInfo().catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'server_error', retryable: true, details: { status: 503, attempts: 3 } });
    expect((err as Error).message).toBe('WOC GET /chain/info: HTTP 503 upstream down');
    expect(calls).toHaveLength(3);
  });

  it('reports a network failure by its code once retries are spent', async () => {
    const { woc } = client([networkError(), networkError(), networkError()]);
    await expect(woc.getChainInfo()).rejects.toMatchObject({
      kind: 'network',
      retryable: true,
      message: 'WOC GET /chain/info: network error ECONNREFUSED',
    });
  });

  it('times out an attempt that never answers and retries it', async () => {
    let attempts = 0;
    const hanging = ((_url: string, init: RequestInit) => {
      attempts++;
      return new Promise((_resolve, reject) => init.signal!.addEventListener('abort', () => reject(init.signal!.reason as Error)));
    }) as typeof fetch;
    const { woc } = client([], { fetchImpl: hanging, timeoutMs: 30, retries: 1 });
    await expect(woc.getChainInfo()).rejects.toMatchObject({ kind: 'timeout', retryable: true, details: { attempts: 2 } });
    expect(attempts).toBe(2);
  });

  it('does not retry a 4xx and reports it as not retryable', async () => {
    const { woc, calls } = client([{ status: 400, body: 'Invalid address' }]);
    await expect(woc.listUnspent('nope')).rejects.toMatchObject({ kind: 'bad_request', retryable: false, details: { status: 400 } });
    expect(calls).toHaveLength(1);
  });

  it('never puts the API key in an error, even when the service echoes it', async () => {
    const { woc } = client([{ status: 400, body: `bad key ${API_KEY}` }], { apiKey: API_KEY });
    const err = (await woc.getChainInfo().catch((e: unknown) => e)) as WocError;
    expect(err.message).toContain('[REDACTED]');
    expect(`${err.message} ${err.stack} ${JSON.stringify(err)}`).not.toContain(API_KEY);

    const failing = client([networkError(), networkError(), networkError()], { apiKey: API_KEY });
    const netErr = (await failing.woc.getChainInfo().catch((e: unknown) => e)) as WocError;
    expect(`${netErr.message} ${netErr.stack} ${JSON.stringify(netErr)}`).not.toContain(API_KEY);
  });

  it('shares one rate limiter across all calls of a client', async () => {
    const replies = Array.from({ length: 4 }, () => json({ chain: 'test', blocks: 1, headers: 1, bestblockhash: 'bb' }));
    // The clock stands still: all four calls book their slot at t = 0.
    const { woc, sleeps } = client(replies, { requestsPerSecond: 2, now: () => 0 });
    await Promise.all([woc.getChainInfo(), woc.getChainInfo(), woc.getChainInfo(), woc.getChainInfo()]);
    // A burst of 2 (the rate), then one slot every 500 ms.
    expect(sleeps).toEqual([500, 1_000]);
  });
});

describe('WOC client reads', () => {
  it('maps a tx to satoshis and confirmations, mempool txs having 0, unknown ones null', async () => {
    const vout = [{ n: 0, value: 0.00049999, scriptPubKey: { hex: '76a9' } }];
    const { woc } = client([
      json({ txid: TXID, size: 191, vout, blockhash: 'cc', blockheight: 9, blocktime: 5, confirmations: 3 }),
      json({ txid: TXID, size: 191, vout }),
      { status: 404, body: 'Not Found' },
    ]);
    expect(await woc.getTx(TXID)).toEqual({
      txid: TXID,
      size: 191,
      confirmations: 3,
      blockHash: 'cc',
      blockHeight: 9,
      blockTime: 5,
      outputs: [{ vout: 0, satoshis: 49_999, scriptHex: '76a9' }],
    });
    expect(await woc.getTx(TXID)).toMatchObject({ confirmations: 0, outputs: [{ satoshis: 49_999 }] });
    expect(await woc.getTx(TXID)).toBeNull();
  });

  it('lists unspent outputs without those a mempool tx already spends', async () => {
    const result = [
      { height: 5, tx_pos: 0, tx_hash: 'a', value: 10, isSpentInMempoolTx: false, status: 'confirmed' },
      { height: 5, tx_pos: 1, tx_hash: 'a', value: 11, isSpentInMempoolTx: true, status: 'confirmed' },
      { height: 0, tx_pos: 0, tx_hash: 'b', value: 12, isSpentInMempoolTx: false, status: 'unconfirmed' },
    ];
    const { woc, calls } = client([json({ address: 'x', script: 'y', result, error: '' })]);
    expect(await woc.listUnspent('mAddr')).toEqual([
      { txid: 'a', vout: 0, satoshis: 10, height: 5 },
      { txid: 'b', vout: 0, satoshis: 12, height: 0 },
    ]);
    expect(calls[0]!.url).toBe('http://woc.example/v1/bsv/test/address/mAddr/unspent/all');
  });

  it('asks for tx statuses in batches of 20 and reads confirmed, mempool and unknown', async () => {
    const txids = Array.from({ length: 45 }, (_, i) => i.toString(16).padStart(64, '0'));
    const reply = (ids: string[]) =>
      json(
        ids.map((txid, i) =>
          i % 3 === 0 ? { txid, blockhash: 'h', blockheight: 2, confirmations: 4 } : i % 3 === 1 ? { txid } : { txid, error: 'unknown' },
        ),
      );
    const { woc, calls } = client([reply(txids.slice(0, 20)), reply(txids.slice(20, 40)), reply(txids.slice(40))]);
    const statuses = await woc.getTxStatuses(txids);
    expect(calls.map((c) => (JSON.parse(c.body!) as { txids: string[] }).txids.length)).toEqual([20, 20, 5]);
    expect(statuses).toHaveLength(45);
    expect(statuses.slice(0, 3)).toEqual([
      { txid: txids[0], state: 'confirmed', confirmations: 4, blockHash: 'h', blockHeight: 2 },
      { txid: txids[1], state: 'mempool', confirmations: 0 },
      { txid: txids[2], state: 'unknown', confirmations: 0 },
    ]);
  });

  it("reads spend status from WOC's spent endpoint, a 404 meaning unspent", async () => {
    const { woc, calls } = client([{ status: 404 }, json({ txid: 'dd', vin: 2 })]);
    expect(await woc.getOutputSpend(TXID, 1)).toEqual({ spent: false });
    expect(await woc.getOutputSpend(TXID, 1)).toEqual({ spent: true, txid: 'dd', vin: 2 });
    expect(calls[0]!.url).toBe(`http://woc.example/v1/bsv/test/tx/${TXID}/1/spent`);
  });

  it('rejects a body of the wrong shape as a non-retryable bad response', async () => {
    const { woc } = client([json({ unexpected: true })]);
    await expect(woc.getChainInfo()).rejects.toMatchObject({ kind: 'bad_response', retryable: false });
  });
});

describe('WOC client broadcast', () => {
  const rejection = (reason: string, status = 400): Reply => json(`unexpected response code 500: ${reason}`, status);

  it('posts {txhex} and reports success with the locally computed txid', async () => {
    const { woc, calls } = client([json(TXID)]);
    expect(await woc.broadcast(RAW_TX)).toEqual({ outcome: 'success', txid: TXID, alreadyKnown: false, httpStatus: 200 });
    expect(calls[0]).toMatchObject({
      method: 'POST',
      url: 'http://woc.example/v1/bsv/test/tx/raw',
      body: JSON.stringify({ txhex: RAW_TX }),
    });
  });

  it('counts a rebroadcast as success and keeps the node reason', async () => {
    const { woc } = client([rejection('Transaction already in the mempool'), rejection('257: txn-already-known')]);
    expect(await woc.broadcast(RAW_TX)).toEqual({
      outcome: 'success',
      txid: TXID,
      alreadyKnown: true,
      reason: 'Transaction already in the mempool',
      httpStatus: 400,
    });
    expect(await woc.broadcast(RAW_TX)).toMatchObject({ outcome: 'success', alreadyKnown: true, reason: '257: txn-already-known' });
  });

  it('classifies rejections without retrying them, even one sent with a 5xx status', async () => {
    const { woc, calls } = client([
      rejection('Missing inputs'),
      rejection('258: txn-mempool-conflict', 500),
      rejection('16: bad-txns-in-belowout'),
    ]);
    expect(await woc.broadcast(RAW_TX)).toMatchObject({ outcome: 'missing_inputs', reason: 'Missing inputs' });
    expect(await woc.broadcast(RAW_TX)).toMatchObject({ outcome: 'mempool_conflict', httpStatus: 500 });
    expect(await woc.broadcast(RAW_TX)).toMatchObject({ outcome: 'other', reason: '16: bad-txns-in-belowout' });
    expect(calls).toHaveLength(3);
  });

  it('answers retryable, not a rejection, when every attempt failed in transport', async () => {
    const { woc, calls } = client([{ status: 503 }, networkError(), { status: 502, body: 'Bad Gateway' }]);
    expect(await woc.broadcast(RAW_TX)).toMatchObject({ outcome: 'retryable', txid: TXID, alreadyKnown: false, httpStatus: 502 });
    expect(calls).toHaveLength(3);
  });

  it('does not call a different txid in the answer a success', async () => {
    const { woc } = client([json('ee'.repeat(32))]);
    expect(await woc.broadcast(RAW_TX)).toMatchObject({ outcome: 'other', txid: TXID });
  });

  it('refuses input that is not hex before any request', async () => {
    const { woc, calls } = client([]);
    await expect(woc.broadcast('xyz')).rejects.toThrow(RangeError);
    expect(calls).toHaveLength(0);
  });
});

describe('WOC client observe hook', () => {
  it('reports each call once, with its operation, outcome and duration, retries included', async () => {
    const observed: { operation: string; outcome: string; seconds: number }[] = [];
    const { woc } = client(
      [
        json({ chain: 'test', blocks: 7, headers: 7, bestblockhash: 'ab' }),
        { status: 503, body: 'busy' },
        { status: 503, body: 'busy' },
        { status: 503, body: 'busy' },
      ],
      { observe: (call) => observed.push(call) },
    );
    await expect(woc.getChainInfo()).resolves.toMatchObject({ blocks: 7 });
    await expect(woc.getTx(TXID)).rejects.toBeInstanceOf(WocError);
    expect(observed.map(({ operation, outcome }) => ({ operation, outcome }))).toEqual([
      { operation: 'get_chain_info', outcome: 'success' },
      { operation: 'get_tx', outcome: 'server_error' },
    ]);
    for (const call of observed) expect(call.seconds).toBeGreaterThanOrEqual(0);
  });
});

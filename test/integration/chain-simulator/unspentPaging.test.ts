import { createWocClient } from '../../../src/woc/client';
import { startSimulator, type RunningSimulator } from '../../support/chainSimulator';
import { newKey } from '../../support/chainTransactions';

/**
 * WhatsOnChain pages the confirmed part of `unspent/all` (1000 a page, the rest behind a next-page token). The
 * simulator pages the same way, here at 3 a page, so a client that read only the first page would miss outputs.
 */
describe('unspent outputs across pages', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ confirmedUnspentPageSize: 3 });
  });
  afterAll(() => sim.stop());

  it('lists every confirmed and unconfirmed output of an address that needs several pages', async () => {
    const owner = newKey();
    const address = owner.toAddress('testnet');
    const confirmed = [];
    for (let i = 0; i < 7; i += 1) confirmed.push(await sim.faucet(owner, 1_000 + i, true));
    const unconfirmed = [await sim.faucet(owner, 5_000, false), await sim.faucet(owner, 5_001, false)];

    const firstPage = (await (await fetch(`${sim.baseUrl}/v1/bsv/test/address/${address}/unspent/all`)).json()) as {
      result: { height: number }[];
      nextPageToken?: string;
    };
    expect(firstPage.result.filter((u) => u.height > 0)).toHaveLength(3);
    expect(firstPage.result.filter((u) => u.height === 0)).toHaveLength(2);
    expect(firstPage.nextPageToken).toEqual(expect.any(String));

    const woc = createWocClient({ network: 'test', baseUrl: sim.baseUrl, timeoutMs: 5_000, retries: 1, requestsPerSecond: 1_000 });
    const listed = await woc.listUnspent(address);
    const key = (o: { txid: string; vout: number }) => `${o.txid}:${o.vout}`;
    expect(listed.map(key).sort()).toEqual([...confirmed, ...unconfirmed].map(key).sort());
    expect(listed.reduce((sum, o) => sum + o.satoshis, 0)).toBe([...confirmed, ...unconfirmed].reduce((sum, c) => sum + c.satoshis, 0));
  });

  it('refuses a page token it did not issue as a client error', async () => {
    const address = newKey().toAddress('testnet');
    const res = await fetch(`${sim.baseUrl}/v1/bsv/test/address/${address}/unspent/all?token=forged`);
    expect(res.status).toBe(400);
  });
});

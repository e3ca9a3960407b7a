import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { createChainSimulator } from '../../../ops/stand-ins/chain-simulator/server';

/** An address of this machine that is not loopback, so a request from it reaches the server as another peer. */
const outsideAddress = Object.values(networkInterfaces())
  .flat()
  .find((entry) => entry && entry.family === 'IPv4' && !entry.internal)?.address;

// The admin routes (faucet, mining, faults, reorgs) carry no auth: bound wider by mistake, they must still refuse.
(outsideAddress ? describe : describe.skip)('chain simulator admin routes bound on every interface', () => {
  it('answer loopback clients only, while the WhatsOnChain routes answer anyone', async () => {
    const simulator = createChainSimulator({ network: 'test' });
    const server = simulator.app.listen(0, '0.0.0.0');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const fromOutside = await fetch(`http://${outsideAddress}:${port}/admin/status`);
      expect(fromOutside.status).toBe(403);
      const faucetFromOutside = await fetch(`http://${outsideAddress}:${port}/admin/faucet`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ address: 'mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn', satoshis: 1000 }),
      });
      expect(faucetFromOutside.status).toBe(403);
      expect(simulator.chains.test.mempoolTxids).toEqual([]);

      expect((await fetch(`http://127.0.0.1:${port}/admin/status`)).status).toBe(200);
      expect((await fetch(`http://${outsideAddress}:${port}/v1/bsv/test/chain/info`)).status).toBe(200);
    } finally {
      server.close();
      await simulator.close();
    }
  });
});

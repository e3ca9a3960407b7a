import type { PrivateKey } from '@bsv/sdk';
import type { FaultSettings } from '../../ops/stand-ins/chain-simulator/faults';
import { type ChainSimulator, type ChainSimulatorOptions, createChainSimulator } from '../../ops/stand-ins/chain-simulator/server';
import type { Coin } from './chainTransactions';
import { listen } from './http';
import { spawnService } from './processes';

/** The chain simulator's WOC base URL and its admin routes, over HTTP only. */
export interface SimulatorClient {
  baseUrl: string;
  faucet(key: PrivateKey, satoshis: number, confirmed?: boolean): Promise<Coin>;
  mine(blocks?: number): Promise<{ height: number; blocks: { height: number; hash: string; txids: string[] }[] }>;
  setFaults(faults: Partial<FaultSettings>): Promise<FaultSettings>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  stop(): Promise<void>;
}

/** The chain simulator on a real socket (127.0.0.1, free port) in this process, so tests can also read its state. */
export interface RunningSimulator extends SimulatorClient {
  simulator: ChainSimulator;
}

export async function startSimulator(options: ChainSimulatorOptions = {}): Promise<RunningSimulator> {
  const simulator = createChainSimulator({ network: 'test', ...options });
  const server = await listen(simulator.app);
  return {
    simulator,
    ...simulatorClient(server.baseUrl, async () => {
      await server.close();
      await simulator.close();
    }),
  };
}

/** The simulator's own entry point as a separate process (its CLI flags in `args`), acting on testnet. */
export async function spawnSimulator(args: string[] = []): Promise<SimulatorClient> {
  const service = await spawnService('ops/stand-ins/chain-simulator/main.ts', ['--network', 'test', ...args], '/v1/bsv/test/chain/info');
  return simulatorClient(service.baseUrl, async () => {
    await service.stop();
  });
}

function simulatorClient(baseUrl: string, stop: () => Promise<void>): SimulatorClient {
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}/admin${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  };
  const ok = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await admin(method, path, body);
    if (res.status !== 200) throw new Error(`admin ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as T;
  };

  return {
    baseUrl,
    admin,
    async faucet(key, satoshis, confirmed = true) {
      const funded = await ok<{ txid: string; vout: number }>('POST', '/faucet', {
        address: key.toAddress('testnet'),
        satoshis,
        confirmed,
      });
      return { txid: funded.txid, vout: funded.vout, satoshis, key };
    },
    mine: (blocks = 1) => ok('POST', '/mine', { blocks }),
    setFaults: (faults) => ok('PUT', '/faults', faults),
    stop,
  };
}

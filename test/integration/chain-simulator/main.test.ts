import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createWocClient } from '../../../src/woc/client';
import { newKey } from '../../support/chainTransactions';
import { runEntry, spawnEntry } from '../../support/processes';

const ENTRY = 'ops/stand-ins/chain-simulator/main.ts';
const started: ChildProcess[] = [];

// A failed assertion must not leave a simulator running.
afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Starts the entry point on a free port and resolves with its URL once it logs that it listens. */
function startEntry(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnEntry(ENTRY, ['--port', '0', ...args], { NODE_ENV: 'development' });
  started.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output);
      if (match) resolve({ child, url: match[1]! });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`chain simulator exited with ${code}: ${output}`)));
  });
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
}

describe('chain simulator entry point', () => {
  it('refuses to start with NODE_ENV=production', async () => {
    const result = await runEntry(ENTRY, ['--port', '0'], { NODE_ENV: 'production' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('refusing to start with NODE_ENV=production');
  });

  it('rejects a malformed flag', async () => {
    const result = await runEntry(ENTRY, ['--network', 'stn'], { NODE_ENV: 'development' });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('main or test');
  });

  it('serves WOC routes, and keeps a funded output across a restart with --persist-file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chain-sim-cli-'));
    const persistFile = path.join(dir, 'chain.json');
    try {
      const first = await startEntry(['--network', 'test', '--persist-file', persistFile]);
      const key = newKey();
      const funded = await fetch(`${first.url}/admin/faucet`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ address: key.toAddress('testnet'), satoshis: 12_345 }),
      });
      const { txid } = (await funded.json()) as { txid: string };
      expect(await stop(first.child)).toBe(0);

      const second = await startEntry(['--network', 'test', '--persist-file', persistFile]);
      const woc = createWocClient({ network: 'test', baseUrl: second.url, timeoutMs: 5_000, retries: 0, requestsPerSecond: 100 });
      expect(await woc.listUnspent(key.toAddress('testnet'))).toEqual([{ txid, vout: 0, satoshis: 12_345, height: 1 }]);
      expect((await woc.getChainInfo()).blocks).toBe(1);
      expect(await stop(second.child)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

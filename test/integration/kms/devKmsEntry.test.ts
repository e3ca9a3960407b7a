import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../../ops/dev-stack/services';
import { createKmsClient } from '../../../src/kms/client';
import { spawnEntry } from '../../support/processes';

async function waitForHealth(baseUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${baseUrl}/health`)).ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`dev KMS at ${baseUrl} did not become healthy`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('dev KMS as its own process', () => {
  it('starts outside production from its CLI flags, creates the --create-key keys and no other, signs for the given API key and stops cleanly on SIGTERM', async () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'dev-kms-process-'));
    const dataDir = path.join(scratch, 'keys');
    const port = await freePort();
    const apiKey = 'process-test-key-0123456789abcdef';
    const child = spawnEntry(
      'ops/stand-ins/dev-kms/main.ts',
      ['--port', String(port), '--data-dir', dataDir, '--api-key', apiKey, '--high-s-rate', '1', '--create-key', 'issuer'],
      { NODE_ENV: 'development' },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const baseUrl = `http://127.0.0.1:${port}`;
      await waitForHealth(baseUrl, 30_000);
      const client = createKmsClient({ baseUrl, apiKey, timeoutMs: 5_000, retryAttempts: 1 });
      const [signature] = await client.sign([{ keyIdentifier: 'issuer', digestHex: 'ab'.repeat(32) }]);
      expect(signature!.pubKeyHex).toBe((await client.publicKey('issuer')).pubKeyHex);
      expect(statSync(path.join(dataDir, 'issuer.json')).mode & 0o777).toBe(0o600);
      // Only --create-key keys exist: another name is unknown, as in a real KMS.
      await expect(client.publicKey('not-provisioned')).rejects.toMatchObject({ retryable: false });
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

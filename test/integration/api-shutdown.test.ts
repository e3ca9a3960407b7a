import { freePort } from '../../ops/dev-stack/services';
import { spawnEntry } from '../support/processes';
import { testEnvironment } from '../support/stack';
import { tcpProxy } from '../support/tcpProxy';
import { testEnv } from '../support/testEnv';

/**
 * The real API process loses Temporal (its connection runs through a proxy the test closes), is asked for /ready
 * while Temporal is gone, and is then stopped: it must still exit 0, with no retry of the readiness probe outliving
 * the connection it ran on.
 */
describe('API shutdown during a Temporal outage', () => {
  it('answers /ready 503 naming temporal, then exits 0 on SIGTERM', async () => {
    const temporalAddress = new URL(`http://${testEnv('temporalAddress')}`);
    const proxy = await tcpProxy({ host: temporalAddress.hostname, port: Number(temporalAddress.port) });
    const port = await freePort();
    const child = spawnEntry(
      'api/server.ts',
      [],
      testEnvironment({ TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}`, PORT: String(port), LOG_FORMAT: 'json' }),
    );
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const baseUrl = `http://127.0.0.1:${port}`;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`API did not start:\n${output}`)), 60_000);
        const check = () => {
          if (!output.includes('api listening')) return;
          clearTimeout(timer);
          resolve();
        };
        child.stdout?.on('data', check);
        child.stderr?.on('data', check);
      });
      expect((await fetch(`${baseUrl}/ready`)).status).toBe(200);

      await proxy.close();
      for (let i = 0; i < 3; i += 1) {
        const res = await fetch(`${baseUrl}/ready`);
        expect(res.status).toBe(503);
        expect(((await res.json()) as { checks: { temporal: { status: string } } }).checks.temporal.status).toBe('down');
      }

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output).not.toContain('Channel has been shut down');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await proxy.close();
    }
  }, 90_000);
});

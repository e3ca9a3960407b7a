import { Client, Connection } from '@temporalio/client';
import { freePort } from '../../../ops/dev-stack/services';
import { TASK_QUEUES } from '../../../workflows/shared/taskQueues';
import { runEntry, spawnEntry } from '../../support/processes';
import { testEnvironment } from '../../support/stack';
import { testEnv } from '../../support/testEnv';
import { isPolling, waitFor } from '../../support/workerProcesses';

/** A production environment that passes the configuration rules, so only the email worker's own checks fail. */
const PRODUCTION = {
  NODE_ENV: 'production',
  JWT_SECRET: 'j'.repeat(40),
  MONGODB_URI: 'mongodb://app:pw@127.0.0.1:9/patchproof',
  REDIS_URL: 'redis://:pw@127.0.0.1:9',
  TEMPORAL_ADDRESS: '127.0.0.1:9',
  TEMPORAL_NAMESPACE: 'default',
  TEMPORAL_INSECURE: 'true',
  KMS_SIGN_URL: 'https://kms.internal',
  KMS_API_KEY: 'kms-key',
  ISSUER_KEY_IDENTIFIER: 'issuer-v2',
  UTXO_FUNDING_KEY_IDENTIFIER: 'funding-v1',
  UNLOCK_CONTENT_SECRET: 'u'.repeat(40),
};

describe('email worker start-up (runbook "Workers (Email)")', () => {
  it('exits 1 in production without an SMTP relay, naming the variable', async () => {
    const result = await runEntry('workers/email.ts', [], PRODUCTION);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('SMTP_HOST: required in production for the email worker');
  });

  it('exits 1 with a clear message when Redis is unreachable at start', async () => {
    const result = await runEntry('workers/email.ts', [], { NODE_ENV: 'development', REDIS_URL: 'redis://127.0.0.1:9' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Redis unreachable at start');
  });

  it('starts against the real stack and stops cleanly on SIGTERM', async () => {
    const env = testEnvironment({
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: testEnv('smtpPort'),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      // Any free port: a dev stack on this machine may hold the default.
      EMAIL_WORKER_METRICS_PORT: '0',
    });
    const child = spawnEntry('workers/email.ts', [], { ...env, WORKFLOW_BUNDLE_PATH: testEnv('workflowBundle') });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 45_000;
    while (!output.includes('email worker started') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(output).toContain('smtp verified');
    expect(output).toContain('email worker started');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('email worker stopped');
  }, 60_000);

  it('runs inside the main worker with EMAIL_WORKER_IN_MAIN=true: one process polls both task queues and drains on SIGTERM', async () => {
    const env = testEnvironment({
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: testEnv('smtpPort'),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      EMAIL_WORKER_IN_MAIN: 'true',
      WORKER_METRICS_PORT: '0',
      TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      SYSTEM_CHECK_EVERY: 'off',
    });
    const child = spawnEntry('workers/main.ts', [], { ...env, WORKFLOW_BUNDLE_PATH: testEnv('workflowBundle') });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const connection = await Connection.connect({ address: testEnv('temporalAddress') });
    const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE! });
    try {
      for (const queue of [TASK_QUEUES.main, TASK_QUEUES.email]) {
        await waitFor(
          `the main worker to poll ${queue}`,
          async () => ((await isPolling(client, env.TEMPORAL_NAMESPACE!, child.pid, queue)) ? true : undefined),
          60_000,
          {
            intervalMs: 250,
            context: () => output.slice(-2000),
          },
        );
      }
      expect(output).toContain('smtp verified');
    } finally {
      child.kill('SIGTERM');
      await connection.close();
    }
    expect(await exited).toBe(0);
    expect(output).toContain('worker stopped');
  }, 90_000);
});

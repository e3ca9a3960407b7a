import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { PrivateKey } from '@bsv/sdk';
import { createDevKms } from '../../ops/stand-ins/dev-kms/server';
import { listen } from '../support/http';
import { runEntry } from '../support/processes';
import { PRODUCTION_REQUIRED_VARIABLES as REQUIRED } from '../support/productionConfig';
import { testEnvironment } from '../support/stack';
import { freePort } from '../../ops/dev-stack/services';
import { testEnv } from '../support/testEnv';

describe('start-up fails fast on bad configuration', () => {
  it.each([['api/server.ts'], ['workers/main.ts']])('%s exits non-zero with one message listing every missing variable', async (entry) => {
    const result = await runEntry(entry, [], { NODE_ENV: 'production', API_KEY: 'x'.repeat(40) });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/^Invalid configuration \(\d+ problems\):/);
    for (const name of REQUIRED.filter((n) => n !== 'API_KEY')) expect(result.stderr).toContain(name);
    expect(result.stderr).not.toContain('x'.repeat(40));
  });

  // One malformed value used to hide every other problem (the schema threw before the production rules ran).
  it('lists a malformed variable together with every missing one', async () => {
    const result = await runEntry('api/server.ts', [], { NODE_ENV: 'production', PORT: 'abc' });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/^Invalid configuration \(\d+ problems\):/);
    expect(result.stderr).toMatch(/^ {2}- PORT: /m);
    for (const name of REQUIRED) expect(result.stderr).toMatch(new RegExp(`^ {2}- ${name}: required in production$`, 'm'));
  });

  it('the API fails fast when Redis is unreachable at start', async () => {
    const result = await runEntry('api/server.ts', [], { NODE_ENV: 'development', REDIS_URL: 'redis://127.0.0.1:9', PORT: '0' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('api failed to start');
  });

  it('the worker refuses to start when the KMS serves another funding key than FUNDING_PUBKEY_HEX', async () => {
    const dataDir = mkdtempSync(path.join(testEnv('scratchDir'), 'fail-fast-kms-'));
    const kmsKey = 'fail-fast-kms-key-0123456789abcdef';
    const kms = await listen(createDevKms({ dataDir, apiKey: kmsKey, keys: ['issuer', 'funding'] }).app);
    try {
      const pinned = PrivateKey.fromRandom().toPublicKey().toString();
      const result = await runEntry(
        'workers/main.ts',
        [],
        testEnvironment({
          KMS_SIGN_URL: kms.baseUrl,
          KMS_API_KEY: kmsKey,
          FUNDING_PUBKEY_HEX: pinned,
          TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
          WORKER_METRICS_PORT: String(await freePort()),
          SYSTEM_CHECK_EVERY: 'off',
          LOG_LEVEL: 'warn',
        }),
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`FUNDING_PUBKEY_HEX is ${pinned} but the KMS serves`);
      expect(result.stderr).toContain('for funding key funding');
      expect(result.stderr).not.toContain(kmsKey);
    } finally {
      await kms.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

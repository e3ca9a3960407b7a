import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFuzzTarget, type FuzzTarget } from '../fuzz/fuzzTarget';
import { describeCounts, runSchemathesis } from '../fuzz/schemathesis';
import { testEnv } from '../support/testEnv';

/**
 * A bounded `npm run fuzz`: schemathesis with every check over the served OpenAPI document, a fixed seed and one
 * example per operation and phase (a few hundred cases with the coverage phase's boundary cases).
 * Any 5xx, any answer the document does not describe and any request the server treats differently from the
 * document fails it, listed by operation.
 */
describe('the served OpenAPI document against the running API (schemathesis)', () => {
  let target: FuzzTarget;
  let workDir: string;

  beforeAll(async () => {
    target = await startFuzzTarget();
    workDir = mkdtempSync(path.join(tmpdir(), 'patchproof-fuzz-test-'));
  });
  afterAll(async () => {
    await target?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('answers every generated case without a 5xx and exactly as documented', async () => {
    const counts = await runSchemathesis({
      schemathesis: testEnv('schemathesis'),
      baseUrl: target.baseUrl,
      apiKey: target.apiKey,
      ownerToken: target.ownerToken,
      network: target.stack.deps.config.woc.network,
      maxExamples: 1,
      seed: 20261208,
      // An answer slower than this on a loaded machine is reported, not waited for.
      requestTimeout: 15,
      workDir,
    });
    expect(counts.cases).toBeGreaterThanOrEqual(100);
    expect({ serverErrors: counts.serverErrors, failures: counts.failures, summary: describeCounts(counts) }).toEqual({
      serverErrors: 0,
      failures: [],
      summary: expect.any(String),
    });
  }, 300_000);
});

/**
 * `npm run fuzz`: schemathesis with every check over the OpenAPI document the API serves, against the real API and
 * worker on freshly started test services, a throwaway dev KMS and the chain simulator. Prints the counts and exits 1
 * on any 5xx or failed check.
 *
 *   npm run fuzz -- [--examples 20] [--seed N] [--max-time SECONDS] [--keep DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import globalSetup from '../support/globalSetup';
import globalTeardown from '../support/globalTeardown';
import { testEnv } from '../support/testEnv';
import { startFuzzTarget } from './fuzzTarget';
import { describeCounts, runSchemathesis } from './schemathesis';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

async function main(): Promise<number> {
  const say = (line: string) => process.stdout.write(`[fuzz] ${line}\n`);
  const examples = Number(option('examples') ?? '20');
  const seed = option('seed');
  const maxTime = option('max-time');
  const keep = option('keep');
  const workDir = keep ? path.resolve(keep) : mkdtempSync(path.join(tmpdir(), 'patchproof-fuzz-'));
  say('starting the test services, the API, the worker, a throwaway dev KMS and the chain simulator');
  await globalSetup();
  let failed = true;
  try {
    const target = await startFuzzTarget();
    try {
      say(`schemathesis over ${target.baseUrl}/openapi.json, every check, ${examples} examples per operation and phase`);
      const counts = await runSchemathesis({
        schemathesis: testEnv('schemathesis'),
        baseUrl: target.baseUrl,
        apiKey: target.apiKey,
        ownerToken: target.ownerToken,
        network: target.stack.deps.config.woc.network,
        maxExamples: examples,
        workDir,
        ...(seed !== undefined && { seed: Number(seed) }),
        ...(maxTime !== undefined && { maxTime: Number(maxTime) }),
      });
      say(describeCounts(counts).split('\n').join('\n[fuzz] '));
      say(`schemathesis output and NDJSON report: ${workDir}${keep ? '' : ' (removed; keep it with --keep DIR)'}`);
      failed = counts.serverErrors > 0 || counts.failures.length > 0;
    } finally {
      await target.close();
    }
  } finally {
    await globalTeardown();
    if (!keep) rmSync(workDir, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[fuzz] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

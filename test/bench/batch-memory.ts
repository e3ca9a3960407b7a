/**
 * The API's memory while it reads full batches: `concurrent` POST /v1/patch-batches of 10,000 items (~15 MB each,
 * ~1.5 kB per item) sent at once to the built API (`node dist/api/server.js` with production's Node flags,
 * ops/deploy/nodeOptions.ts). Prints each answer, the API's peak RSS and whether it survived. Sizes the API's heap cap
 * against BATCH_MAX_CONCURRENT (docs/DEPLOY.md, Process memory); set BATCH_MAX_CONCURRENT above `concurrent` to see
 * what the cap alone allows, and BENCH_API_NODE_ARGS (e.g. --max-old-space-size=96) to try another cap.
 * Run: npm run build && npx tsx test/bench/batch-memory.ts [concurrent=3]
 */
import { PrivateKey } from '@bsv/sdk';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { requireBuiltCode, runBench, startBuiltApi } from '../support/bench';
import { registrationBody } from '../support/patchApi';
import { testEnvironment } from '../support/stack';

const concurrent = Number(process.argv[2] ?? 3);
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  requireBuiltCode();
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const env = testEnvironment({
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    ADMIN_API_MAX: '100000000',
    API_KEY_RATE_MAX: '100000000',
    BATCH_MAX_CONCURRENT: process.env.BATCH_MAX_CONCURRENT ?? String(concurrent),
  });
  const api = await startBuiltApi(env);
  try {
    const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');
    const notes = 'x'.repeat(1300);
    const batch = (tag: string) =>
      JSON.stringify(
        Array.from({ length: 10_000 }, (_, i) => {
          const item = registrationBody(`MEM-${tag}-${i}`, owner);
          item.metadata.notes = notes;
          return item;
        }),
      );
    const bodies = Array.from({ length: concurrent }, (_, i) => batch(`${Date.now()}-${i}`));
    const before = api.rssMb();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, api.rssMb() || 0)), 50);
    const answers = await Promise.all(
      bodies.map((body, i) =>
        fetch(`${api.url}/v1/patch-batches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': env.API_KEY!, 'idempotency-key': `mem-${Date.now()}-${i}` },
          body,
        }).then(
          (res) => String(res.status),
          (err: Error) => `no answer (${err.message})`,
        ),
      ),
    );
    clearInterval(sampler);
    say(`${concurrent} batches of 10,000 items, ${(bodies[0]!.length / 1048576).toFixed(1)} MB each, sent at once`);
    say(`  answers            ${answers.join(', ')}`);
    say(`  API RSS            ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB at peak`);
    say(`  API process        ${api.child.exitCode === null && api.child.signalCode === null ? 'running' : 'DIED'}`);
    if (api.child.exitCode !== null) say(api.lastOutput().slice(-1500));
  } finally {
    await api.stop();
    await globalTeardown();
  }
}

runBench(main);

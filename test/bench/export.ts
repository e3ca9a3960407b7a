/**
 * The patch export's memory on the real stack, built code only (`node dist/api/server.js`): 10,000 patches of one
 * tenant (and 2,000 of another, which must not appear) are exported as NDJSON and as CSV, read slowly by this
 * process so the response's backpressure reaches the database cursor. Prints the API's RSS before and its peak
 * during each export (sampled every 50 ms), the bytes and lines received and the time taken.
 * Target: RSS growth < 50 MB for 10,000 patches.
 * Run: npm run build && npx tsx test/bench/export.ts [--patches 10000]
 */
import { parseArgs } from 'node:util';
import { PrivateKey } from '@bsv/sdk';
import { requireBuiltCode, startBuiltApi } from '../support/bench';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { connectTestDeps, testEnvironment } from '../support/stack';
import { insertManyIgnoringDuplicates } from '../../src/db/bulkWrites';
import { patchModel, type PatchDocument } from '../../src/registration/models';
import { createApiKey } from '../../src/tenancy/keyStore';

const say = (line: string) => process.stdout.write(`${line}\n`);

function patches(tenantId: string, prefix: string, count: number, owner: string): PatchDocument[] {
  const start = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const uid = `${prefix}-${String(i).padStart(6, '0')}`;
    const at = new Date(start + i);
    return {
      _id: uid,
      registrationId: `registration-${uid}`,
      status: 'anchored',
      requestHash: 'h'.repeat(64),
      idempotencyKey: null,
      record: {
        product: { name: 'Field jacket, limited run', sku: 'FJ-01', serial_number: `SN-${i}` },
        metadata: { notes: 'n'.repeat(200) },
      },
      recordHash: 'r'.repeat(64),
      issuerSignature: null,
      anchor: { txid: 't'.repeat(64), vout: 0, proof: null, blockHeight: 100 },
      owner,
      head: null,
      lastError: null,
      tenantId,
      createdBy: 'bench',
      createdAt: at,
      updatedAt: at,
    };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { patches: { type: 'string', default: '10000' } } });
  const count = Number(values.patches);
  requireBuiltCode();
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const deps = await connectTestDeps('bench');
  const owner = PrivateKey.fromRandom().toPublicKey().toAddress('main');
  try {
    const model = patchModel(deps.mongo);
    await model.createIndexes();
    const docs = [...patches('bench-brand', 'EXP', count, owner), ...patches('other-brand', 'OTHER', 2_000, owner)];
    for (let i = 0; i < docs.length; i += 1_000) await insertManyIgnoringDuplicates(model, docs.slice(i, i + 1_000));
    const { key } = await createApiKey(deps.mongo, {
      tenantId: 'bench-brand',
      name: 'export bench',
      scopes: ['patches:read'],
      mode: 'test',
      createdBy: 'bench',
    });
    const api = await startBuiltApi(testEnvironment({ MONGODB_URI: deps.config.mongo.uri, LOG_LEVEL: 'warn' }));
    try {
      say(`export of ${count} patches (another tenant's 2,000 beside them), API ${api.url}`);
      for (const format of ['ndjson', 'csv'] as const) {
        // Settle first: the figure is what the export adds, not the start's garbage.
        await new Promise((r) => setTimeout(r, 1_000));
        const before = api.rssMb();
        let peak = before;
        const sampler = setInterval(() => (peak = Math.max(peak, api.rssMb())), 50);
        const started = performance.now();
        const res = await fetch(`${api.url}/v1/exports/patches?format=${format}`, { headers: { 'x-api-key': key } }).catch(
          (err: unknown) => {
            throw new Error(`the export request failed (${String(err)}); the API said:\n${api.lastOutput()}`);
          },
        );
        let bytes = 0;
        let lines = 0;
        const reader = res.body!.getReader();
        for (;;) {
          const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
          if (done || !value) break;
          bytes += value.byteLength;
          for (const b of value) if (b === 10) lines++;
          // A slow client: backpressure must hold the cursor rather than buffer the rest in the API.
          await new Promise((r) => setTimeout(r, 1));
        }
        clearInterval(sampler);
        const seconds = (performance.now() - started) / 1000;
        say(
          `${format.padEnd(6)} status ${res.status}, ${lines} lines, ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s; ` +
            `API RSS ${before.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB (+${(peak - before).toFixed(1)} MB)`,
        );
      }
    } finally {
      await api.stop();
    }
  } finally {
    await deps.close();
    await globalTeardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

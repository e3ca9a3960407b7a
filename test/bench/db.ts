/**
 * Embedded-database benchmark: what the hot operations cost on the MongoDB-wire stand-in at 10,000 and 100,000
 * documents, each beside the same operation on an empty collection in the same run, so a regression shows as a
 * ratio rather than as a figure of this shared machine. Starts its own FerretDB (and PostgreSQL) on free ports.
 *
 * Run: npx tsx test/bench/db.ts [--backend postgresql|sqlite] [--sizes 10000,100000]
 *
 * Operations, each timed by its median:
 * - find by _id, and by a field with a unique index (50 lookups of random existing documents);
 * - insertMany of 1,000 new documents;
 * - a bulk update of 1,000 documents by _id through bulkWriteInChunks (commands of 40 statements);
 * - updateMany of 1,000 documents matched by an indexed field, and of 1,000 by `_id: {$in}`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Schema, type Connection } from 'mongoose';
import { provision } from '../../ops/dev-stack/provision';
import { describeMongo, freePort, startMongoWire } from '../../ops/dev-stack/services';
import { loadConfig } from '../../src/config';
import { loadDevStackConfig } from '../../src/config/devStack';
import { bulkWriteInChunks } from '../../src/db/bulkWrites';
import { connectMongo } from '../../src/db/mongo';

interface BenchDoc {
  _id: string;
  uid: string;
  state: string;
  payload: string;
}

const schema = new Schema<BenchDoc>({ _id: String, uid: String, state: String, payload: String }, { versionKey: false });
schema.index({ uid: 1 }, { unique: true });
schema.index({ state: 1 });

const say = (line: string) => process.stdout.write(`${line}\n`);
const BATCH = 1000;
const LOOKUPS = 50;
const ROUNDS = 3;

const doc = (n: number, state = 'anchored'): BenchDoc => ({
  _id: `PP-${String(n).padStart(7, '0')}`,
  uid: `uid-${String(n).padStart(7, '0')}`,
  state,
  // About the size of a stored patch record (canonical record, signature, proof).
  payload: 'x'.repeat(600),
});

async function median(rounds: number, fn: (round: number) => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    await fn(round);
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
}

type Figures = Record<string, number>;

/** Measures every operation against a collection that holds `size` documents before the first one. */
async function measure(mongo: Connection, size: number): Promise<Figures> {
  const model = mongo.model<BenchDoc>(`Bench${size}`, schema, `bench_${size}`);
  await model.createCollection();
  await model.createIndexes();
  for (let start = 0; start < size; start += BATCH) {
    await model.insertMany(
      Array.from({ length: Math.min(BATCH, size - start) }, (_, i) => doc(start + i)),
      { ordered: false },
    );
  }
  const randomExisting = () => Math.floor(Math.random() * Math.max(size, 1));
  let next = size;
  const freshBatch = () => Array.from({ length: BATCH }, () => doc(next++, 'accepted'));

  const figures: Figures = {};
  figures['find by _id'] = await median(LOOKUPS, () => model.findById(doc(randomExisting())._id).lean());
  figures['find by indexed field'] = await median(LOOKUPS, () => model.findOne({ uid: doc(randomExisting()).uid }).lean());
  const batches: BenchDoc[][] = [];
  figures['insertMany 1,000'] = await median(ROUNDS, async () => {
    const batch = freshBatch();
    batches.push(batch);
    await model.insertMany(batch, { ordered: false });
  });
  figures['chunked bulk update 1,000'] = await median(ROUNDS, (round) =>
    bulkWriteInChunks(
      model,
      batches[round]!.map((d) => ({ updateOne: { filter: { _id: d._id }, update: { $set: { state: `batch-${round}` } } } })),
    ),
  );
  figures['updateMany 1,000 by indexed field'] = await median(ROUNDS, (round) =>
    model.updateMany({ state: `batch-${round}` }, { $set: { state: `done-${round}` } }),
  );
  figures['updateMany 1,000 by _id $in'] = await median(ROUNDS, (round) =>
    model.updateMany({ _id: { $in: batches[round]!.map((d) => d._id) } }, { $set: { state: 'anchored' } }),
  );
  await model.collection.drop();
  return figures;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { backend: { type: 'string' }, sizes: { type: 'string', default: '10000,100000' } } });
  const sizes = values.sizes.split(',').map(Number);
  const env = { ...process.env, ...(values.backend && { PATCHPROOF_FERRETDB_BACKEND: values.backend }) };
  const tools = await provision({ purpose: 'dev', config: loadDevStackConfig(env), needRedisServer: false, say: () => undefined });
  if (tools.mongo.kind === 'external') throw new Error('the benchmark starts its own MongoDB-wire database');
  const scratch = mkdtempSync(path.join(tmpdir(), 'bench-db-'));
  const port = await freePort();
  const database = await startMongoWire({
    mongo: tools.mongo,
    port,
    dataDir: path.join(scratch, 'db'),
    logFile: path.join(scratch, 'db.log'),
  });
  // SQLite scans take minutes at scale: the socket must outlast them.
  const mongo = await connectMongo(
    loadConfig({ NODE_ENV: 'development', MONGODB_URI: `mongodb://127.0.0.1:${port}/bench`, DB_SOCKET_TIMEOUT_MS: '900000' }).mongo,
  );
  try {
    say(`Embedded database: ${describeMongo(tools.mongo)}; medians in ms; ratio = figure at N documents / figure on an empty collection`);
    const empty = await measure(mongo, 0);
    const rows = Object.keys(empty).map((name) => [name, empty[name]!.toFixed(1)]);
    const header = ['operation', 'empty'];
    for (const size of sizes) {
      const started = Date.now();
      const figures = await measure(mongo, size);
      header.push(`${size.toLocaleString('en')} docs`, 'ratio');
      rows.forEach((row) => row.push(figures[row[0]!]!.toFixed(1), (figures[row[0]!]! / empty[row[0]!]!).toFixed(2)));
      process.stderr.write(`[bench] ${size} documents measured in ${Math.round((Date.now() - started) / 1000)} s\n`);
    }
    say(`| ${header.join(' | ')} |`);
    say(`|${header.map(() => '---').join('|')}|`);
    for (const row of rows) say(`| ${row.join(' | ')} |`);
  } finally {
    await mongo.close();
    await database.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

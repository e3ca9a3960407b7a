import { Schema, type Connection } from 'mongoose';
import { loadConfig } from '../../../src/config';
import { bulkWriteInChunks, BulkWriteChunksError, statementLimit } from '../../../src/db/bulkWrites';
import { connectMongo, pingMongo } from '../../../src/db/mongo';
import { testEnvironment } from '../../support/stack';

interface Item {
  _id: string;
  state: string;
  round: number;
}

const itemSchema = new Schema<Item>({ _id: String, state: String, round: Number }, { collection: 'bulk_items', versionKey: false });
itemSchema.index({ state: 1 });

describe('bulk writes on the Mongo-wire database', () => {
  let mongo: Connection;
  let otherReader: Connection;

  beforeAll(async () => {
    const env = testEnvironment();
    mongo = await connectMongo(loadConfig(env).mongo);
    // A second client, as another process would be: the database must keep answering it between commands.
    otherReader = await connectMongo(loadConfig(env).mongo);
  });

  afterAll(async () => {
    await mongo.dropDatabase().catch(() => undefined);
    await Promise.allSettled([mongo.close(), otherReader.close()]);
  });

  it('knows the server is FerretDB and keeps every command below its statement limit', () => {
    // FerretDB deadlocks when update commands together hold its whole pool (50 on PostgreSQL by default).
    expect(statementLimit(mongo)).toBe(16);
  });

  it('lets concurrent bulk updates of one process take turns, so together they never hold the whole pool', async () => {
    const items = mongo.model<Item>('TurnItem', itemSchema);
    const writers = Array.from({ length: 6 }, (_, w) => Array.from({ length: 120 }, (_, i) => `turn-${w}-${String(i).padStart(3, '0')}`));
    await bulkWriteInChunks(
      items,
      writers.flat().map((_id) => ({ insertOne: { document: { _id, state: 'accepted', round: 0 } } })),
    );
    // Six writers at once, 120 statements each: sent all together they would ask FerretDB for 6 × 120 connections.
    const totals = await Promise.all(
      writers.map((ids) =>
        bulkWriteInChunks(
          items,
          ids.map((_id) => ({ updateOne: { filter: { _id }, update: { $set: { round: 1 } } } })),
        ),
      ),
    );
    expect(totals.map((t) => [t.matched, t.modified, t.commands])).toEqual(writers.map(() => [120, 120, 8]));
    expect(await items.countDocuments({ round: 1 })).toBe(720);
  });

  it('runs twenty 1,000-statement bulk updates in a row while another client reads, and the server keeps answering', async () => {
    const items = mongo.model<Item>('BulkItem', itemSchema);
    const ids = Array.from({ length: 1000 }, (_, i) => `item-${String(i).padStart(4, '0')}`);
    const inserted = await bulkWriteInChunks(
      items,
      ids.map((_id) => ({ insertOne: { document: { _id, state: 'accepted', round: 0 } } })),
    );
    expect(inserted).toMatchObject({ inserted: 1000, commands: 63 });

    const readerItems = otherReader.model<Item>('BulkItem', itemSchema);
    let readsAnswered = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const started = Date.now();
        const doc = await readerItems
          .findById(ids[readsAnswered % ids.length])
          .lean()
          .maxTimeMS(5_000);
        expect(doc?._id).toBe(ids[readsAnswered % ids.length]);
        expect(Date.now() - started).toBeLessThan(5_000);
        readsAnswered += 1;
      }
    })();

    for (let round = 1; round <= 20; round += 1) {
      const totals = await bulkWriteInChunks(
        items,
        ids.map((_id) => ({ updateOne: { filter: { _id }, update: { $set: { state: round % 2 ? 'anchoring' : 'anchored', round } } } })),
      );
      expect(totals).toMatchObject({ matched: 1000, modified: 1000, commands: 63 });
      await pingMongo(otherReader);
    }
    reading = false;
    await reader;

    expect(readsAnswered).toBeGreaterThan(0);
    expect(await items.countDocuments({ state: 'anchored', round: 20 })).toBe(1000);
    // 20,000 statements at a few ms each on FerretDB: this is the slow part of the file.
  }, 300_000);

  it('runs every chunk of an unordered write and reports the failed statements by their index in the whole list', async () => {
    const items = mongo.model<Item>('BulkItem', itemSchema);
    await items.deleteMany({});
    await items.create({ _id: 'dup-0050', state: 'accepted', round: 0 });
    const ids = Array.from({ length: 100 }, (_, i) => `dup-${String(i).padStart(4, '0')}`);

    const failure = await bulkWriteInChunks(
      items,
      ids.map((_id) => ({ insertOne: { document: { _id, state: 'accepted', round: 1 } } })),
    ).catch((err: unknown) => err);

    expect(failure).toBeInstanceOf(BulkWriteChunksError);
    const error = failure as BulkWriteChunksError;
    expect(error.writeErrors.map((e) => e.index)).toEqual([50]);
    expect(error.onlyDuplicateKeys).toBe(true);
    expect(error.totals).toMatchObject({ inserted: 99, commands: 7 });
    expect(await items.countDocuments({})).toBe(100);
  });

  it('stops at the first failed statement of an ordered write', async () => {
    const items = mongo.model<Item>('BulkItem', itemSchema);
    await items.deleteMany({});
    await items.create({ _id: 'ord-0010', state: 'accepted', round: 0 });
    const ids = Array.from({ length: 100 }, (_, i) => `ord-${String(i).padStart(4, '0')}`);

    const failure = (await bulkWriteInChunks(
      items,
      ids.map((_id) => ({ insertOne: { document: { _id, state: 'accepted', round: 1 } } })),
      { ordered: true },
    ).catch((err: unknown) => err)) as BulkWriteChunksError;

    expect(failure.writeErrors.map((e) => e.index)).toEqual([10]);
    expect(failure.totals.commands).toBe(1);
    expect(await items.countDocuments({})).toBe(11);
  });
});

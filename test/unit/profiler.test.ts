import fc from 'fast-check';
import mongoose from 'mongoose';
import { registerModels } from '../../src/db/models';
import { commandShape, HOT_QUERIES } from '../../src/db/profiler';

describe('profile-db', () => {
  it('prints the shape of a recorded command and never its values', () => {
    const shape = commandShape({
      find: 'owner_accounts',
      filter: { email: 'owner@example.com', codeHash: { $eq: '$2b$10$secret' } },
      sort: { createdAt: -1 },
      lsid: { id: 'session' },
      $db: 'patchproof',
    });
    expect(shape).toBe('{find: ?, filter: {email: ?, codeHash: {$eq: ?}}, sort: {createdAt: ?}}');
  });

  it('keeps every string value out of the shape, however the command nests it', () => {
    const value = fc.string({ minLength: 6 }).filter((v) => /^[A-Za-z0-9@.]+$/.test(v) && !/^[?{}[\]:, ]+$/.test(v));
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('a', 'b', 'filter', '$in'),
          fc.oneof(value, fc.array(value), fc.dictionary(fc.constantFrom('x', 'y'), value)),
        ),
        value,
        (command, secret) => {
          const shape = commandShape({ ...command, find: secret, filter: { email: secret } });
          expect(shape).not.toContain(secret);
        },
      ),
    );
  });

  it('expects, for every hot query, an index that its model declares', async () => {
    // Models register on a connection that never connects: only their schemas are read.
    const connection = mongoose.createConnection();
    registerModels(connection);
    const declared = new Map<string, Set<string>>();
    for (const model of Object.values(connection.models)) {
      const names = model.schema.indexes().map(([keys]) =>
        Object.entries(keys)
          .map(([k, v]) => `${k}_${String(v)}`)
          .join('_'),
      );
      declared.set(model.collection.collectionName, new Set(names));
    }
    for (const query of HOT_QUERIES) {
      expect([query.name, declared.get(query.collection)?.has(query.expectedIndex)]).toEqual([query.name, true]);
    }
    await connection.close();
  });
});

import path from 'node:path';
import { declaredIndexLeads, describeShape, productCaller, shapeOf, uncoveredShapes, type QueryShape } from '../../support/queryShapes';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('query shapes against declared indexes', () => {
  it('reads how each filter field is matched, flattening $and and keeping $or branches', () => {
    expect(shapeOf({ _id: 'PP-1', status: { $in: ['a', 'b'] }, satoshis: { $gte: 5 }, reservedBy: { $ne: null } })).toEqual({
      fields: { _id: 'eq', status: 'in', satoshis: 'range', reservedBy: 'not' },
    });
    expect(shapeOf({ $and: [{ owner: 'x' }, { createdAt: new Date(0) }], $or: [{ a: 1 }, { b: { $exists: true } }] })).toEqual({
      fields: { owner: 'eq', createdAt: 'eq' },
      anyOf: [{ a: 'eq' }, { b: 'exists' }],
    });
    expect(shapeOf(undefined)).toEqual({ fields: {} });
  });

  it('finds the lead field of every index the models declare', () => {
    const leads = declaredIndexLeads();
    expect([...(leads.get('patches') ?? [])].sort()).toEqual(['_id', 'anchor.txid', 'batchId', 'status', 'tenantId']);
    expect(leads.get('utxos')?.has('reservedBy')).toBe(true);
  });

  it('flags filters that no index leads, and empty filters, but not _id or indexed lookups', () => {
    const leads = new Map([['patches', new Set(['_id', 'status'])]]);
    const shape = (fields: Record<string, string>, anyOf?: Record<string, string>[]): QueryShape => ({
      collection: 'patches',
      method: 'find',
      fields,
      ...(anyOf && { anyOf }),
    });
    const covered = [shape({ _id: 'eq' }), shape({ status: 'in', owner: 'eq' }), shape({}, [{ _id: 'eq' }, { status: 'eq' }])];
    const scans = [shape({}), shape({ owner: 'eq' }), shape({ status: 'not' }), shape({}, [{ _id: 'eq' }, { owner: 'eq' }])];
    expect(uncoveredShapes([...covered, ...scans], leads)).toEqual(scans);
    expect(describeShape(scans[3]!)).toBe('patches.find({} $or[_id | owner])');
  });

  it('attributes a query to the first product file on the stack, and to nobody when a test sends it', () => {
    const frame = (file: string) => `    at fn (${path.join(ROOT, file)}:12:7)`;
    const stack = (...files: string[]) => ['Error', ...files.map(frame)].join('\n');
    expect(
      productCaller(stack('node_modules/mongoose/lib/query.ts', 'src/pool/reservations.ts', 'activities/pool/poolActivities.ts')),
    ).toBe('src/pool/reservations.ts');
    expect(productCaller(stack('node_modules/mongoose/lib/query.ts', 'test/integration/pool/reservations.test.ts'))).toBeNull();
    expect(productCaller(stack('node_modules/mongoose/lib/model.ts'))).toBeNull();
    // The recorder's own frames come first and do not count as the test's.
    expect(productCaller(stack('test/support/queryShapes.ts', 'src/pool/reservations.ts'))).toBe('src/pool/reservations.ts');
  });
});

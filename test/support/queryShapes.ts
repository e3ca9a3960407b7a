/**
 * Every query the code sends through mongoose during the integration tests, reduced to its shape (collection,
 * method, filter fields and how each is matched), and checked against the indexes the models declare. A filter no
 * index covers is a full collection scan: at a brand's scale it is seconds per call on any MongoDB, and on the
 * embedded FerretDB even an indexed filter is scanned unless the backend can push it down.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import mongoose from 'mongoose';
import { registerModels } from '../../src/db/models';

export interface QueryShape {
  collection: string;
  method: string;
  /** The product file that sent it (recorded shapes only). */
  caller?: string;
  /** Each top-level filter field with how it is matched: `eq`, `in`, `range`, `exists`, `not` or `other`. */
  fields: Record<string, string>;
  /** Alternatives of an `$or`, each a shape's fields of its own. */
  anyOf?: Record<string, string>[];
}

const FILTERED_METHODS = new Set([
  'find',
  'findOne',
  'findOneAndUpdate',
  'findOneAndDelete',
  'findOneAndReplace',
  'updateOne',
  'updateMany',
  'replaceOne',
  'deleteOne',
  'deleteMany',
  'countDocuments',
  'distinct',
]);

/** Reads a filter's fields and how each is matched; `$and` is flattened, `$or` kept as alternatives. */
export function shapeOf(filter: unknown): Pick<QueryShape, 'fields' | 'anyOf'> {
  const fields: Record<string, string> = {};
  let anyOf: Record<string, string>[] | undefined;
  const visit = (value: Record<string, unknown>) => {
    for (const [key, condition] of Object.entries(value)) {
      if (key === '$and' && Array.isArray(condition)) condition.forEach((part) => visit(part as Record<string, unknown>));
      else if (key === '$or' && Array.isArray(condition)) anyOf = condition.map((part) => shapeOf(part).fields);
      else if (!key.startsWith('$')) fields[key] = matchKind(condition);
    }
  };
  if (filter && typeof filter === 'object') visit(filter as Record<string, unknown>);
  return anyOf ? { fields, anyOf } : { fields };
}

function matchKind(condition: unknown): string {
  if (condition === null || typeof condition !== 'object' || condition instanceof Date || Array.isArray(condition)) return 'eq';
  const operators = Object.keys(condition);
  if (operators.length === 0 || !operators.every((op) => op.startsWith('$'))) return 'eq';
  if (operators.includes('$eq')) return 'eq';
  if (operators.includes('$in')) return 'in';
  if (operators.some((op) => ['$gt', '$gte', '$lt', '$lte'].includes(op))) return 'range';
  if (operators.every((op) => op === '$exists')) return 'exists';
  if (operators.every((op) => op === '$ne' || op === '$nin')) return 'not';
  return 'other';
}

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const PRODUCT_DIRS = ['src', 'activities', 'api', 'workers', 'workflows', 'ops'].map((dir) => path.join(REPO_ROOT, dir) + path.sep);

/**
 * The product file that issued the query being recorded, read from the call stack; null for a query a test makes
 * itself (set-up, clean-up, assertions), which the product never sends.
 */
export function productCaller(stack: string | undefined): string | null {
  for (const line of (stack ?? '').split('\n')) {
    const file = /\(?((?:\/[^():]+)+\.ts):\d+:\d+\)?$/.exec(line.trim())?.[1];
    if (!file || file === __filename || file.includes(`${path.sep}node_modules${path.sep}`)) continue;
    if (file.startsWith(path.join(REPO_ROOT, 'test') + path.sep)) return null;
    if (PRODUCT_DIRS.some((dir) => file.startsWith(dir))) return path.relative(REPO_ROOT, file);
  }
  return null;
}

/** A stack deep enough to get past mongoose's and the driver's own frames (V8 keeps 10 by default). */
function deepStack(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 80;
  try {
    return new Error().stack;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Installs the recorder in this process: each new shape the product issues is appended to `<dir>/<pid>.ndjson`. */
export function recordQueryShapes(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${process.pid}.ndjson`);
  const seen = new Set<string>();
  mongoose.set('debug', (collection: string, method: string, ...args: unknown[]) => {
    const filters =
      method === 'bulkWrite'
        ? ((args[0] as Record<string, { filter?: unknown }>[] | undefined) ?? []).flatMap((op) =>
            Object.entries(op).flatMap(([kind, body]) => (kind === 'insertOne' ? [] : [{ method: kind, filter: body.filter }])),
          )
        : method === 'aggregate'
          ? [{ method, filter: ((args[0] as Record<string, unknown>[] | undefined) ?? [])[0]?.$match ?? {} }]
          : FILTERED_METHODS.has(method)
            ? [{ method, filter: args[0] }]
            : [];
    for (const { method: kind, filter } of filters) {
      const shape: QueryShape = { collection, method: kind, ...shapeOf(filter) };
      const key = JSON.stringify(shape);
      if (seen.has(key)) continue;
      // The stack is read only for a shape not yet recorded, and a test's own query leaves it unrecorded.
      const caller = productCaller(deepStack());
      if (!caller) continue;
      seen.add(key);
      appendFileSync(file, `${JSON.stringify({ ...shape, caller })}\n`);
    }
  });
}

export function readQueryShapes(dir: string): QueryShape[] {
  if (!existsSync(dir)) return [];
  const unique = new Map<string, QueryShape>();
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      if (!line) continue;
      const shape = JSON.parse(line) as QueryShape;
      unique.set(JSON.stringify({ ...shape, caller: undefined }), shape);
    }
  }
  return [...unique.values()];
}

/** The first field of every index each model declares, by collection (`_id` always). */
export function declaredIndexLeads(): Map<string, Set<string>> {
  const connection = mongoose.createConnection();
  registerModels(connection);
  const leads = new Map<string, Set<string>>();
  for (const model of Object.values(connection.models)) {
    const set = leads.get(model.collection.collectionName) ?? new Set<string>(['_id']);
    for (const [keys] of model.schema.indexes()) {
      const lead = Object.keys(keys)[0];
      if (lead) set.add(lead);
    }
    leads.set(model.collection.collectionName, set);
  }
  void connection.close();
  return leads;
}

/**
 * Scans the code runs on purpose, each with the reason it is not a hot path. Anything else without an index fails
 * the suite.
 */
export const ACCEPTED_SCANS: { collection: string; method: string; why: string }[] = [
  {
    collection: 'active_keys',
    method: 'find',
    why: 'one document per key purpose (three), read whole into the key cache of each process (KEY_SETTINGS_CACHE_MS)',
  },
  { collection: 'rotation_keys', method: 'find', why: 'every key ever rotated in or out: tens of documents, read into the same cache' },
  {
    collection: 'issuer_key_revocations',
    method: 'find',
    why: 'one document per revoked issuer key (a handful), read into the same cache',
  },
  {
    collection: 'utxos',
    method: 'aggregate',
    why: 'pool health groups the whole pool by status, behind UTXO_HEALTH_CACHE_MS; an operator view, not a request path',
  },
  {
    collection: 'utxo_reservations',
    method: 'find',
    why: 'the reconciler reads the oldest reservations; only in-flight ones exist (they are deleted when spent or released)',
  },
];

const USABLE = new Set(['eq', 'in', 'range']);

/** The shapes no declared index serves: the filter's fields include no index's first field with a usable match. */
export function uncoveredShapes(shapes: QueryShape[], leads: Map<string, Set<string>>): QueryShape[] {
  const covered = (collection: string, fields: Record<string, string>) => {
    const indexLeads = leads.get(collection);
    return Object.entries(fields).some(([field, kind]) => USABLE.has(kind) && (indexLeads?.has(field) ?? field === '_id'));
  };
  return shapes.filter((shape) => {
    if (ACCEPTED_SCANS.some((s) => s.collection === shape.collection && s.method === shape.method)) return false;
    if (covered(shape.collection, shape.fields)) return false;
    if (shape.anyOf && shape.anyOf.every((branch) => covered(shape.collection, { ...shape.fields, ...branch }))) return false;
    return true;
  });
}

export function describeShape(shape: QueryShape): string {
  const fields = Object.entries(shape.fields).map(([f, k]) => `${f}:${k}`);
  const alternatives = shape.anyOf ? ` $or[${shape.anyOf.map((b) => Object.keys(b).join('+')).join(' | ')}]` : '';
  return `${shape.collection}.${shape.method}({${fields.join(', ')}}${alternatives})${shape.caller ? ` from ${shape.caller}` : ''}`;
}

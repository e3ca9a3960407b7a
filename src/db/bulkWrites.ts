import type { AnyBulkWriteOperation, Connection, Model } from 'mongoose';

/**
 * The one way this code base sends a multi-statement write. FerretDB (the embedded stand-in) keeps every update
 * statement's cursor, and with it one of its PostgreSQL connections, open until the command ends; a statement also
 * needs a second connection for its transaction. Commands that together hold the whole pool (100 on SQLite, 50 on
 * PostgreSQL unless `pool_max_conns` says more) wait for each other for good, and so does every other request to
 * that server. So on FerretDB a command carries few statements and each process sends one at a time: N processes
 * hold at most N × (limit + 1) connections. A real MongoDB gets its own batch size, and bulk writes stay bulk.
 */

/** MongoDB's `maxWriteBatchSize`: the most statements one command may carry. */
const MONGODB_MAX_WRITE_BATCH = 100_000;
/** Used until connectMongo has told us what the server is: safe on every Mongo-wire server. */
export const DEFAULT_FERRETDB_STATEMENTS_PER_COMMAND = 16;

const limits = new WeakMap<Connection, number>();
/** Connections known to reach a real MongoDB, whose commands need no turn-taking. */
const mongodConnections = new WeakSet<Connection>();
/** Per connection, the end of the multi-statement command last queued: the next one waits for it. */
const lastCommand = new WeakMap<Connection, Promise<unknown>>();

/** Runs `command` after the connection's earlier multi-statement commands have ended (FerretDB only). */
function inTurn<R>(connection: Connection, command: () => Promise<R>): Promise<R> {
  if (mongodConnections.has(connection)) return command();
  const run = (lastCommand.get(connection) ?? Promise.resolve()).then(command, command);
  lastCommand.set(
    connection,
    run.catch(() => undefined),
  );
  return run;
}

/**
 * Records how many statements one command may carry on this connection's server: the configured limit on FerretDB
 * (told apart by the `ferretdbVersion` its buildInfo answers), MongoDB's batch size elsewhere.
 */
export async function detectStatementLimit(connection: Connection, ferretdbLimit: number): Promise<number> {
  if (!connection.db) throw new Error('not connected');
  const info = (await connection.db.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string };
  const limit = info.ferretdbVersion ? ferretdbLimit : MONGODB_MAX_WRITE_BATCH;
  limits.set(connection, limit);
  if (!info.ferretdbVersion) mongodConnections.add(connection);
  return limit;
}

export function statementLimit(connection: Connection): number {
  return limits.get(connection) ?? DEFAULT_FERRETDB_STATEMENTS_PER_COMMAND;
}

export interface BulkWriteTotals {
  inserted: number;
  matched: number;
  modified: number;
  deleted: number;
  upserted: number;
  /** Commands sent: one per chunk. */
  commands: number;
}

interface WriteErrorLike {
  index: number;
  code?: number;
  errmsg?: string;
}

/** Thrown after every chunk has run (unordered) when some statements failed; indexes refer to the whole list. */
export class BulkWriteChunksError extends Error {
  constructor(
    readonly writeErrors: WriteErrorLike[],
    readonly totals: BulkWriteTotals,
  ) {
    super(`${writeErrors.length} of the bulk write's statements failed (first: ${writeErrors[0]?.errmsg ?? 'unknown'})`);
    this.name = 'BulkWriteChunksError';
  }

  /** True when every failed statement was a duplicate key: an idempotent insert that had already happened. */
  get onlyDuplicateKeys(): boolean {
    return this.writeErrors.every((e) => e.code === 11000);
  }
}

/**
 * Sends `operations` as one bulk write per chunk of at most the server's statement limit, in order. Unordered (the
 * default) runs every chunk and reports all failed statements at the end; ordered stops at the first failure.
 */
export async function bulkWriteInChunks<T extends object>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any model: the operations' type follows from it
  model: Model<T, any, any, any, any, any>,
  operations: AnyBulkWriteOperation<T>[],
  options: { ordered?: boolean; maxStatementsPerCommand?: number } = {},
): Promise<BulkWriteTotals> {
  const ordered = options.ordered ?? false;
  const size = Math.max(1, options.maxStatementsPerCommand ?? statementLimit(model.db));
  const totals: BulkWriteTotals = { inserted: 0, matched: 0, modified: 0, deleted: 0, upserted: 0, commands: 0 };
  const failures: WriteErrorLike[] = [];
  for (let start = 0; start < operations.length; start += size) {
    const chunk = operations.slice(start, start + size);
    totals.commands += 1;
    try {
      // The single sanctioned call site (see eslint.config.mjs): every other write of many statements comes here.
      // eslint-disable-next-line no-restricted-syntax
      addTotals(totals, await inTurn(model.db, () => model.bulkWrite(chunk as Parameters<typeof model.bulkWrite>[0], { ordered })));
    } catch (err) {
      const bulk = err as { writeErrors?: WriteErrorLike[] | WriteErrorLike; result?: unknown };
      if (bulk.writeErrors === undefined) throw err;
      if (bulk.result) addTotals(totals, bulk.result);
      const errors = Array.isArray(bulk.writeErrors) ? bulk.writeErrors : [bulk.writeErrors];
      failures.push(...errors.map((e) => ({ index: start + e.index, code: e.code, errmsg: e.errmsg })));
      if (ordered) break;
    }
  }
  if (failures.length > 0) throw new BulkWriteChunksError(failures, totals);
  return totals;
}

function addTotals(totals: BulkWriteTotals, result: unknown): void {
  const r = result as {
    insertedCount?: number;
    matchedCount?: number;
    modifiedCount?: number;
    deletedCount?: number;
    upsertedCount?: number;
  };
  totals.inserted += r.insertedCount ?? 0;
  totals.matched += r.matchedCount ?? 0;
  totals.modified += r.modifiedCount ?? 0;
  totals.deleted += r.deletedCount ?? 0;
  totals.upserted += r.upsertedCount ?? 0;
}

/**
 * Inserts documents that carry their own `_id`, unordered, and reports which were there already (by position in
 * `documents`): a retried insert, or a key another writer took first. Any other failure is thrown. Goes to the
 * driver directly: the documents are built by our code, and mongoose's per-document casting would double the time
 * of a 1,000-row insert.
 */
export async function insertManyIgnoringDuplicates<T extends { _id: unknown }>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any model: only its collection is used
  model: Model<any, any, any, any, any, any>,
  documents: T[],
): Promise<{ inserted: number; duplicateIndexes: number[] }> {
  if (documents.length === 0) return { inserted: 0, duplicateIndexes: [] };
  try {
    const result = await model.collection.insertMany(documents as never[], { ordered: false });
    return { inserted: result.insertedCount, duplicateIndexes: [] };
  } catch (err) {
    const bulk = err as { writeErrors?: WriteErrorLike[] | WriteErrorLike; insertedCount?: number };
    if (bulk.writeErrors === undefined) throw err;
    const errors = Array.isArray(bulk.writeErrors) ? bulk.writeErrors : [bulk.writeErrors];
    const other = errors.find((e) => e.code !== 11000);
    if (other) throw err;
    return { inserted: bulk.insertedCount ?? documents.length - errors.length, duplicateIndexes: errors.map((e) => e.index) };
  }
}

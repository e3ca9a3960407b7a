import mongoose, { type Connection } from 'mongoose';
import type { AppConfig } from '../config';
import type { CircuitBreaker } from '../resilience/circuitBreaker';
import { guardMongoOperations } from '../resilience/guards';
import { detectStatementLimit } from './bulkWrites';

/** For a connection on a request path (the API): a deadline on every operation and the dependency's breaker. */
export interface MongoRequestGuard {
  operationTimeoutMs: number;
  breaker: CircuitBreaker;
}

/**
 * Opens a dedicated connection (not mongoose's global one) and waits until the server answers. With `guard`, each
 * phase of an operation is bounded by `operationTimeoutMs`: finding the server, opening a connection, and waiting
 * for the answer (the socket timeout applies only while a command is in flight; the driver closes a connection
 * whose answer is late). Mongoose's buffering and the driver's retries are off, so nothing waits for a reconnect or
 * runs twice; and every operation passes the breaker. (Driver 7 dropped the single per-operation `timeoutMS`.)
 */
export async function connectMongo(config: AppConfig['mongo'], guard?: MongoRequestGuard): Promise<Connection> {
  const connection = mongoose.createConnection(config.uri, {
    serverSelectionTimeoutMS: Math.min(config.serverSelectionTimeoutMs, guard?.operationTimeoutMs ?? Infinity),
    connectTimeoutMS: Math.min(config.connectTimeoutMs, guard?.operationTimeoutMs ?? Infinity),
    socketTimeoutMS: guard?.operationTimeoutMs ?? config.socketTimeoutMs,
    // Indexes are created by ensureIndexes (src/db/indexes.ts) at worker start, never implicitly on first use.
    autoIndex: false,
    autoCreate: false,
    // One attempt per operation: the driver's own retry would spend the budget twice; the client retries instead,
    // after the Retry-After of the 503.
    ...(guard && { bufferCommands: false, monitorCommands: true, retryReads: false, retryWrites: false }),
  });
  await connection.asPromise();
  if (guard) guardMongoOperations(connection, guard.breaker);
  await detectStatementLimit(connection, config.maxStatementsPerCommand);
  return connection;
}

export async function pingMongo(connection: Connection): Promise<void> {
  if (!connection.db) throw new Error('not connected');
  await connection.db.admin().command({ ping: 1 });
}

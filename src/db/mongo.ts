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
 * Opens a dedicated connection (not mongoose's global one) and waits until the server answers. With `guard`, every
 * operation has the driver's `timeoutMS` (server selection, connection checkout and the server's answer together;
 * the driver closes a connection whose answer is late) and passes the breaker.
 */
export async function connectMongo(config: AppConfig['mongo'], guard?: MongoRequestGuard): Promise<Connection> {
  const connection = mongoose.createConnection(config.uri, {
    serverSelectionTimeoutMS: config.serverSelectionTimeoutMs,
    connectTimeoutMS: config.connectTimeoutMs,
    socketTimeoutMS: config.socketTimeoutMs,
    // Indexes are created by ensureIndexes (src/db/indexes.ts) at worker start, never implicitly on first use.
    autoIndex: false,
    autoCreate: false,
    ...(guard && { timeoutMS: guard.operationTimeoutMs, monitorCommands: true }),
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

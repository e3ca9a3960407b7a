import mongoose, { type Connection } from 'mongoose';
import type { AppConfig } from '../config';
import { detectStatementLimit } from './bulkWrites';

/** Opens a dedicated connection (not mongoose's global one) and waits until the server answers. */
export async function connectMongo(config: AppConfig['mongo']): Promise<Connection> {
  const connection = mongoose.createConnection(config.uri, {
    serverSelectionTimeoutMS: config.serverSelectionTimeoutMs,
    connectTimeoutMS: config.connectTimeoutMs,
    socketTimeoutMS: config.socketTimeoutMs,
    // Indexes are created by ensureIndexes (src/db/indexes.ts) at worker start, never implicitly on first use.
    autoIndex: false,
    autoCreate: false,
  });
  await connection.asPromise();
  await detectStatementLimit(connection, config.maxStatementsPerCommand);
  return connection;
}

export async function pingMongo(connection: Connection): Promise<void> {
  if (!connection.db) throw new Error('not connected');
  await connection.db.admin().command({ ping: 1 });
}

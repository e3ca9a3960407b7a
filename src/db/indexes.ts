import type { Connection } from 'mongoose';
import type { Logger } from '../logging/logger';

export interface IndexReport {
  model: string;
  status: 'ok' | 'not_implemented' | 'failed';
  error?: string;
}

// FerretDB (the dev stand-in) answers NotImplemented (code 238) for TTL and partial indexes that MongoDB honours.
const NOT_IMPLEMENTED = 238;

/**
 * Creates every index the registered models declare. Only creates: unlike syncIndexes it never drops an index
 * someone added by hand. What the database cannot build is reported, not fatal, because queries enforce expiry
 * themselves; anything else fails.
 */
export async function ensureIndexes(connection: Connection, logger?: Logger): Promise<IndexReport[]> {
  const reports: IndexReport[] = [];
  for (const model of Object.values(connection.models)) {
    try {
      await model.createCollection().catch((err: { codeName?: string }) => {
        if (err.codeName !== 'NamespaceExists') throw err;
      });
      await model.createIndexes();
      reports.push({ model: model.modelName, status: 'ok' });
    } catch (err) {
      const code = (err as { code?: number }).code;
      const status = code === NOT_IMPLEMENTED ? 'not_implemented' : 'failed';
      reports.push({ model: model.modelName, status, error: (err as Error).message });
      logger?.warn('index creation incomplete', { model: model.modelName, status, err });
    }
  }
  if (reports.some((r) => r.status === 'failed')) {
    throw new Error(
      `index creation failed for ${reports
        .filter((r) => r.status === 'failed')
        .map((r) => r.model)
        .join(', ')}`,
    );
  }
  return reports;
}

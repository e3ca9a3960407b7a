import type { Connection } from 'mongoose';
import { probeModel, systemCheckModel } from './systemCheck';

/** Registers every model on the connection, so ensureIndexes sees all declared indexes. */
export function registerModels(connection: Connection): void {
  systemCheckModel(connection);
  probeModel(connection);
}

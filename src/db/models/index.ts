import type { Connection } from 'mongoose';
import { claimModel, reservationModel, utxoModel } from '../../pool/models';
import { probeModel, systemCheckModel } from './systemCheck';
import { registerAuthModels } from '../../auth/models';

/** Registers every model on the connection, so ensureIndexes sees all declared indexes. */
export function registerModels(connection: Connection): void {
  systemCheckModel(connection);
  probeModel(connection);
  utxoModel(connection);
  claimModel(connection);
  reservationModel(connection);
  registerAuthModels(connection);
}

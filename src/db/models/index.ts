import { archivedHistoryModel, historyWatermarkModel } from '../../history/models';
import type { Connection } from 'mongoose';
import { claimModel, reservationModel, utxoModel } from '../../pool/models';
import { probeModel, systemCheckModel } from './systemCheck';
import { registerAuthModels } from '../../auth/models';
import { registerBulkRegistrationModels } from '../../bulkRegistration/models';
import { settingModel } from '../../pool/settings';
import { ownerBindingModel, usedNonceModel } from '../../ownership/models';
import { issuerKeyRevocationModel } from '../../issuerKeys/models';
import { patchModel } from '../../registration/models';
import { activeKeyModel, rotationKeyModel } from '../../rotation/models';
import { transferModel } from '../../transfer/models';
import { unlockableContentModel } from '../../unlock/content';
import { registerChainFollowerModels } from '../../chainFollower/models';
import { tagCounterClaimModel, tagModel, tapEventModel } from '../../tags/models';
import { apiKeyModel } from '../../tenancy/models';
import { webhookDeliveryModel, webhookEndpointModel, webhookEventModel } from '../../webhooks/models';

/** Registers every model on the connection, so ensureIndexes sees all declared indexes. */
export function registerModels(connection: Connection): void {
  systemCheckModel(connection);
  probeModel(connection);
  utxoModel(connection);
  claimModel(connection);
  reservationModel(connection);
  settingModel(connection);
  registerAuthModels(connection);
  patchModel(connection);
  rotationKeyModel(connection);
  activeKeyModel(connection);
  issuerKeyRevocationModel(connection);
  transferModel(connection);
  usedNonceModel(connection);
  ownerBindingModel(connection);
  unlockableContentModel(connection);
  registerBulkRegistrationModels(connection);
  registerChainFollowerModels(connection);
  tagModel(connection);
  tagCounterClaimModel(connection);
  tapEventModel(connection);
  apiKeyModel(connection);
  archivedHistoryModel(connection);
  historyWatermarkModel(connection);
  webhookEndpointModel(connection);
  webhookEventModel(connection);
  webhookDeliveryModel(connection);
}

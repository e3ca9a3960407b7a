import { chainClientsFromConfig, type ChainClients } from '../src/chain/clients';
import type { AppConfig } from '../src/config';
import { createAnchoringActivities, type AnchoringActivityDeps } from './anchoring/anchoringActivities';
import { createBackupActivities, type BackupActivityDeps } from './backup/backupActivities';
import { createBulkRegistrationActivities, type BulkRegistrationActivityDeps } from './bulkRegistration/bulkRegistrationActivities';
import { createChainActivities, type ChainActivityDeps } from './chain/chainActivities';
import { createPoolActivities, type PoolActivityDeps } from './pool/poolActivities';
import { createRegistrationActivities, type RegistrationActivityDeps } from './registration/registrationActivities';
import { createRotationActivities, type RotationActivityDeps } from './rotation/rotationActivities';
import { keyringFromConfig } from '../src/rotation/keyring';
import { createTransferActivities, type TransferActivityDeps } from './transfer/transferActivities';
import { createClaimActivities, type ClaimActivityDeps } from './claim/claimActivities';
import { createIssuerKeyActivities, type IssuerKeyActivityDeps } from './issuerKeys/revocationActivities';
import { createSystemActivities, type SystemActivityDeps } from './system/probes';
import { createChainFollowerActivities, type ChainFollowerActivityDeps } from './chainFollower/followerActivities';
import { createHistoryArchiveActivities, type HistoryArchiveActivityDeps } from './history/historyArchiveActivities';
import { createWebhookActivities, type WebhookActivityDeps } from './webhooks/webhookActivities';

export type ActivityDeps = SystemActivityDeps &
  ChainActivityDeps &
  PoolActivityDeps &
  RegistrationActivityDeps &
  BulkRegistrationActivityDeps &
  AnchoringActivityDeps &
  TransferActivityDeps &
  ClaimActivityDeps &
  BackupActivityDeps &
  RotationActivityDeps &
  IssuerKeyActivityDeps &
  ChainFollowerActivityDeps &
  HistoryArchiveActivityDeps &
  WebhookActivityDeps;

/** Every activity of the main task queue, built from the process's shared dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSystemActivities(deps),
    ...createChainActivities(deps),
    ...createPoolActivities(deps),
    ...createRegistrationActivities(deps),
    ...createBulkRegistrationActivities(deps),
    ...createAnchoringActivities(deps),
    ...createTransferActivities(deps),
    ...createClaimActivities(deps),
    ...createBackupActivities(deps),
    ...createRotationActivities(deps),
    ...createIssuerKeyActivities(deps),
    ...createChainFollowerActivities(deps),
    ...createHistoryArchiveActivities(deps),
    ...createWebhookActivities(deps),
  };
}

/** The activities' dependencies from the configuration and the process's connections; the worker and tests share it. */
export function activityDepsFromConfig(
  config: AppConfig,
  connections: Pick<ActivityDeps, 'mongo' | 'redis' | 'logger' | 'metrics' | 'temporal'>,
  chain: ChainClients = chainClientsFromConfig(config, connections.logger, connections.metrics),
): ActivityDeps {
  return {
    ...connections,
    ...chain,
    pool: config.pool,
    issuerKeyIdentifier: config.kms.issuerKeyIdentifier,
    tagKeyIdentifier: config.tags.keyIdentifier,
    anchoring: config.anchoring,
    backup: config.backup,
    chainFollower: config.chainFollower,
    historyArchive: config.historyArchive,
    webhooks: config.webhooks,
    keys: keyringFromConfig(config, connections.mongo),
    jwt: { env: config.ownerAuth.jwt, jwtSecret: config.auth.jwtSecret },
  };
}

import { chainClientsFromConfig, type ChainClients } from '../src/chain/clients';
import type { AppConfig } from '../src/config';
import { createChainActivities, type ChainActivityDeps } from './chain/chainActivities';
import { createPoolActivities, type PoolActivityDeps } from './pool/poolActivities';
import { createRegistrationActivities, type RegistrationActivityDeps } from './registration/registrationActivities';
import { createSystemActivities, type SystemActivityDeps } from './system/probes';

export type ActivityDeps = SystemActivityDeps & ChainActivityDeps & PoolActivityDeps & RegistrationActivityDeps;

/** Every activity of the main task queue, built from the process's shared dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSystemActivities(deps),
    ...createChainActivities(deps),
    ...createPoolActivities(deps),
    ...createRegistrationActivities(deps),
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
    anchorConfirmations: config.anchoring.confirmations,
  };
}

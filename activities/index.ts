import { createChainActivities, type ChainActivityDeps } from './chain/chainActivities';
import { createPoolActivities, type PoolActivityDeps } from './pool/poolActivities';
import { createSystemActivities, type SystemActivityDeps } from './system/probes';

export type ActivityDeps = SystemActivityDeps & ChainActivityDeps & PoolActivityDeps;

/** Every activity of the main task queue, built from the process's shared dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSystemActivities(deps),
    ...createChainActivities(deps),
    ...createPoolActivities(deps),
  };
}

import type { Connection } from 'mongoose';
import type { Network } from '../../src/chain/addresses';
import type { PoolConfig } from '../../src/config';
import type { KmsClient } from '../../src/kms/client';
import type { Logger } from '../../src/logging/logger';
import type { WocClient } from '../../src/woc/client';

/** What every activity that spends pool outputs needs: the store, the signer, the chain service and the pool settings. */
export interface PoolSpendingDeps {
  mongo: Connection;
  kms: KmsClient;
  woc: WocClient;
  logger: Logger;
  network: Network;
  pool: PoolConfig;
}

import type { AppConfig } from '../config';
import { createKmsClient, type KmsClient } from '../kms/client';
import type { Logger } from '../logging/logger';
import { kmsCallObserver, wocCallObserver, type Metrics } from '../metrics';
import { createWocClient, type WocClient } from '../woc/client';
import type { Network } from './addresses';

export interface ChainClients {
  kms: KmsClient;
  woc: WocClient;
  network: Network;
}

/** The clients of the chain borders, built from configuration; neither connects until first used. */
export function chainClientsFromConfig(config: AppConfig, logger?: Logger, metrics?: Metrics): ChainClients {
  return {
    kms: createKmsClient({
      baseUrl: config.kms.signUrl,
      apiKey: config.kms.apiKey,
      timeoutMs: config.kms.timeoutMs,
      retryAttempts: config.kms.retryAttempts,
      ...(metrics && { observe: kmsCallObserver(metrics) }),
    }),
    woc: createWocClient({ ...config.woc, ...(logger && { logger }), ...(metrics && { observe: wocCallObserver(metrics) }) }),
    network: config.woc.network,
  };
}

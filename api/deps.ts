import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import type { AppConfig } from '../src/config';
import type { Logger } from '../src/logging/logger';
import type { Metrics } from '../src/metrics';
import type { Verification } from '../src/registration/verify';
import type { VerdictCache } from './verdictCache';

/** What the API is built from: configuration and the live connections. The app and the route modules share it. */
export interface AppDeps {
  config: AppConfig;
  logger: Logger;
  metrics: Metrics;
  mongo: Connection;
  redis: Redis;
  temporal: Client;
  /** Settled verification verdicts kept in this process, following announced changes (api/server.ts builds it); none kept when absent. */
  verdicts?: VerdictCache<Verification>;
  /**
   * The connection for reads that stream for as long as the client reads (the patch export): without the request
   * deadline, which would cut a large tenant's first sorted batch. `mongo` when absent.
   */
  streamingMongo?: Connection;
}

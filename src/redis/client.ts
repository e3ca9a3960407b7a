import { Redis } from 'ioredis';
import type { AppConfig } from '../config';
import { parseRedisUrl } from '../config/urls';
import type { CircuitBreaker } from '../resilience/circuitBreaker';
import { guardRedisCommands } from '../resilience/guards';

/** For a client on a request path (the API): a deadline on every command and the dependency's breaker. */
export interface RedisRequestGuard {
  commandTimeoutMs: number;
  breaker: CircuitBreaker;
}

/**
 * Connects to Redis and fails if it does not answer: Redis is required at start (rate limits, SVD caches).
 * Offline queueing is off, so while Redis is away commands fail at once and callers can fail closed or open
 * as each route decides, instead of hanging. With `guard`, a stalled server (connected, not answering) fails each
 * command after `commandTimeoutMs`, and the breaker stops sending once several did.
 */
export async function connectRedis(
  config: AppConfig['redis'],
  options: { connectionName: string; onError?: (err: Error) => void; guard?: RedisRequestGuard },
): Promise<Redis> {
  const url = parseRedisUrl(config.url);
  if (!url) throw new Error('REDIS_URL is not a redis:// or rediss:// URL');
  const password = url.password ?? config.password;
  const client = new Redis({
    host: url.host,
    port: url.port,
    db: url.db,
    ...(url.username && { username: url.username }),
    ...(password && { password }),
    ...(url.tls && { tls: {} }),
    connectionName: options.connectionName,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    ...(options.guard && { commandTimeout: options.guard.commandTimeoutMs }),
  });
  if (options.guard) guardRedisCommands(client, options.guard.breaker);
  // Without a listener ioredis would throw on every reconnect attempt; the caller logs instead.
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
    options.onError?.(err);
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    // A refused AUTH surfaces as "Connection is closed."; name the server's answer (NOAUTH, WRONGPASS) instead.
    if (lastError && lastError !== err) throw new Error(`redis: ${lastError.message}`, { cause: err });
    throw err;
  }
  return client;
}

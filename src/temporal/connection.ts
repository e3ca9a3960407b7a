import { readFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/client';
import type { AppConfig } from '../config';
import type { CircuitBreaker } from '../resilience/circuitBreaker';
import { guardTemporalCalls } from '../resilience/guards';

type TemporalConfig = AppConfig['temporal'];

export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

/** Connection options shared by the client (API, CLI) and the worker's NativeConnection. */
export async function temporalConnectionOptions(config: TemporalConfig): Promise<TemporalConnectionOptions> {
  const tls = config.tls
    ? {
        ...(config.tls.serverName && { serverNameOverride: config.tls.serverName }),
        ...(config.tls.caPath && { serverRootCACertificate: await readFile(config.tls.caPath) }),
        ...(config.tls.certPath &&
          config.tls.keyPath && {
            clientCertPair: { crt: await readFile(config.tls.certPath), key: await readFile(config.tls.keyPath) },
          }),
      }
    : undefined;
  return {
    address: config.address,
    ...(tls && { tls }),
    ...(config.apiKey && { apiKey: config.apiKey }),
  };
}

/** For a client on a request path (the API): a deadline on every workflow call and the dependency's breaker. */
export interface TemporalRequestGuard {
  callTimeoutMs: number;
  breaker: CircuitBreaker;
}

export async function connectTemporalClient(config: TemporalConfig, guard?: TemporalRequestGuard): Promise<Client> {
  const connection = await Connection.connect({ ...(await temporalConnectionOptions(config)), connectTimeout: '10s' });
  return new Client({
    connection,
    namespace: config.namespace,
    ...(guard && { interceptors: { workflow: [guardTemporalCalls(connection, guard.breaker, guard.callTimeoutMs)] } }),
  });
}

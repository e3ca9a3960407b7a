import { readFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/client';
import type { AppConfig } from '../config';

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

export async function connectTemporalClient(config: TemporalConfig): Promise<Client> {
  const connection = await Connection.connect({ ...(await temporalConnectionOptions(config)), connectTimeout: '10s' });
  return new Client({ connection, namespace: config.namespace });
}

/**
 * Entry point of the dev KMS stand-in: `node --import tsx ops/stand-ins/dev-kms/main.ts [--port 8090] ...`.
 * It keeps private keys in plain files, so it refuses to start when NODE_ENV=production.
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { DEV_DEFAULTS } from '../../../src/config';
import { loadDevStackConfig } from '../../../src/config/devStack';
import { standInEnvironment } from '../../../src/config/standIns';
import { createLogger } from '../../../src/logging/logger';
import { redactString } from '../../../src/logging/redact';
import { serveUntilSignalled } from '../serve';
import { createDevKms, DEFAULT_HIGH_S_RATE } from './server';

const DEFAULT_PORT = Number(new URL(DEV_DEFAULTS.KMS_SIGN_URL).port);

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw new InvalidArgumentError('a port number 0..65535');
  return port;
}

function parseRate(value: string): number {
  const rate = Number(value);
  if (value.trim() === '' || !(rate >= 0 && rate <= 1)) throw new InvalidArgumentError('a number between 0 and 1');
  return rate;
}

function main(): void {
  const { nodeEnv } = standInEnvironment();
  if (nodeEnv === 'production') {
    process.stderr.write(
      'dev-kms: refusing to start with NODE_ENV=production. The dev KMS keeps private keys in local files and is for ' +
        'development and tests only; production must point KMS_SIGN_URL at the real KMS.\n',
    );
    process.exit(1);
  }

  const program = new Command('dev-kms')
    .description('KMS HTTP contract over keys on local disk (dev and tests only)')
    .option('--port <port>', 'port to listen on (0 picks a free one)', parsePort, DEFAULT_PORT)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--data-dir <dir>', 'directory for key files (created with mode 0700)', path.join(loadDevStackConfig().dataDir, 'dev-kms'))
    .option('--api-key <key>', 'bearer key callers must present', DEV_DEFAULTS.KMS_API_KEY)
    .option('--high-s-rate <rate>', 'share of signatures returned high-S, 0..1', parseRate, DEFAULT_HIGH_S_RATE)
    .option(
      '--create-key <name>',
      'create this key at start when missing (repeatable); no other key exists until created with POST /keys',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .parse();
  const options = program.opts<{ port: number; host: string; dataDir: string; apiKey: string; highSRate: number; createKey: string[] }>();

  const logger = createLogger({ service: 'dev-kms', deploySha: 'dev', level: 'info', format: 'pretty' });
  const { app, keys } = createDevKms({
    dataDir: options.dataDir,
    apiKey: options.apiKey,
    highSRate: options.highSRate,
    logger,
    keys: options.createKey,
  });
  serveUntilSignalled({
    name: 'dev kms',
    app,
    port: options.port,
    host: options.host,
    logger,
    details: { dataDir: keys.dataDir, highSRate: options.highSRate, nodeEnv, createdKeys: options.createKey },
  });
}

try {
  main();
} catch (err) {
  process.stderr.write(`dev-kms failed to start: ${redactString(err instanceof Error ? err.message : String(err))}\n`);
  process.exit(1);
}

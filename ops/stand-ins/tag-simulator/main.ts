/**
 * Entry point of the tag simulator stand-in: `node --import tsx ops/stand-ins/tag-simulator/main.ts [--port 8092]`.
 * It asks the KMS for per-tag keys as a factory would, so it refuses to start in production.
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_TAG_SIMULATOR_URL, loadConfig } from '../../../src/config';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import { loadDevStackConfig } from '../../../src/config/devStack';
import { createLogger } from '../../../src/logging/logger';
import { redactString } from '../../../src/logging/redact';
import { serveUntilSignalled } from '../serve';
import { createTagSimulator } from './server';

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw new InvalidArgumentError('a port number 0..65535');
  return port;
}

function main(): void {
  const config = loadConfig();
  if (config.isProduction) {
    process.stderr.write('tag-simulator: refusing to start with NODE_ENV=production (dev and tests only).\n');
    process.exit(1);
  }
  const program = new Command('tag-simulator')
    .description('NTAG 424 DNA tags in SUN mode (dev and tests only)')
    .option('--port <port>', 'port to listen on', parsePort, Number(new URL(DEFAULT_TAG_SIMULATOR_URL).port))
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--tap-base-url <url>', 'origin and path of the tap route', `http://127.0.0.1:${config.http.port}/t`)
    .option('--data-dir <dir>', 'directory for tag counters', path.join(loadDevStackConfig().dataDir, 'tag-simulator'))
    .parse();
  const options = program.opts<{ port: number; host: string; tapBaseUrl: string; dataDir: string }>();
  const logger = createLogger({ service: 'tag-simulator', deploySha: 'dev', level: 'info', format: 'pretty' });
  const { kms } = chainClientsFromConfig(config, logger);
  const { app } = createTagSimulator({
    kms,
    keyIdentifier: config.tags.keyIdentifier,
    template: {
      baseUrl: options.tapBaseUrl,
      piccDataParam: config.tags.piccDataParam,
      cmacParam: config.tags.cmacParam,
      macInput: config.tags.macInput,
    },
    dataDir: options.dataDir,
    logger,
  });
  serveUntilSignalled({
    name: 'tag simulator',
    app,
    port: options.port,
    host: options.host,
    logger,
    details: { tapBaseUrl: options.tapBaseUrl },
  });
}

try {
  main();
} catch (err) {
  process.stderr.write(`tag-simulator failed to start: ${redactString(err instanceof Error ? err.message : String(err))}\n`);
  process.exit(1);
}

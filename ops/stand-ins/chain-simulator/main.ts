/**
 * Entry point of the chain simulator: `tsx ops/stand-ins/chain-simulator/main.ts --port 8091`. A dev and test
 * stand-in for WhatsOnChain; it refuses to run with NODE_ENV=production.
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEV_WOC_BASE_URL } from '../../../src/config';
import { standInEnvironment } from '../../../src/config/standIns';
import { createLogger } from '../../../src/logging/logger';
import { isNetwork, type Network } from './addresses';
import { serveUntilSignalled } from '../serve';
import { createChainSimulator } from './server';

function wholeNumber(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`a whole number ≥ ${min}`);
    return n;
  };
}

function network(value: string): Network {
  if (!isNetwork(value)) throw new InvalidArgumentError('main or test');
  return value;
}

interface CliOptions {
  port: number;
  host: string;
  network: Network;
  feeRate: number;
  ancestorLimit: number;
  blockIntervalMs?: number;
  persistFile?: string;
  logLevel: string;
}

function main(): void {
  const { nodeEnv } = standInEnvironment();
  if (nodeEnv === 'production') {
    process.stderr.write('chain simulator: refusing to start with NODE_ENV=production; point WOC_BASE_URL at WhatsOnChain instead\n');
    process.exit(1);
  }

  const options = new Command('chain-simulator')
    .description('WhatsOnChain-compatible chain simulator for dev and tests')
    .option('--port <port>', 'TCP port (0 picks a free one)', wholeNumber(0), Number(new URL(DEV_WOC_BASE_URL).port))
    .option('--host <host>', 'address to bind; keep it on loopback, the admin routes have no auth', '127.0.0.1')
    .option('--network <network>', 'network the admin routes act on by default (main|test)', network, 'main')
    .option('--fee-rate <satPerKb>', 'policy minimum fee rate in sat/kB', wholeNumber(0), 1)
    .option('--ancestor-limit <count>', 'unconfirmed ancestors at which a tx is too-long-mempool-chain', wholeNumber(1), 25)
    .option('--block-interval-ms <ms>', 'mine a block on every network at this interval', wholeNumber(1))
    .option('--persist-file <path>', 'keep the chains in this JSON file across restarts')
    .option('--log-level <level>', 'winston log level', 'info')
    .parse()
    .opts<CliOptions>();

  const logger = createLogger({ service: 'chain-simulator', deploySha: 'dev', level: options.logLevel, format: 'pretty' });
  const simulator = createChainSimulator({
    network: options.network,
    feeRateSatPerKb: options.feeRate,
    ancestorLimit: options.ancestorLimit,
    blockIntervalMs: options.blockIntervalMs ?? null,
    ...(options.persistFile && { persistFile: options.persistFile }),
    logger,
  });
  serveUntilSignalled({
    name: 'chain simulator',
    app: simulator.app,
    port: options.port,
    host: options.host,
    logger,
    details: { network: options.network, feeRateSatPerKb: options.feeRate, nodeEnv },
    onClose: () => simulator.close(),
  });
}

try {
  main();
} catch (err) {
  process.stderr.write(`chain simulator failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

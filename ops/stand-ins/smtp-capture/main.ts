/**
 * Entry point of the SMTP capture stand-in: `node --import tsx ops/stand-ins/smtp-capture/main.ts --port 2525
 * --http-port 8025`. Keeps mail in memory for dev; refuses NODE_ENV=production.
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEV_SMTP_PORT } from '../../../src/config';
import { standInEnvironment } from '../../../src/config/standIns';
import { createLogger } from '../../../src/logging/logger';
import { redactString } from '../../../src/logging/redact';
import { loadDevStackConfig } from '../../../src/config/devStack';
import { startSmtpCapture } from './server';

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw new InvalidArgumentError('a port number 0..65535');
  return port;
}

async function main(): Promise<void> {
  if (standInEnvironment().nodeEnv === 'production') {
    process.stderr.write('smtp-capture: refusing to start with NODE_ENV=production; point SMTP_HOST at a real relay.\n');
    process.exit(1);
  }
  const options = new Command('smtp-capture')
    .description('SMTP server that keeps received mail for dev and tests, with an HTTP API to read it')
    .option('--port <port>', 'SMTP port', parsePort, DEV_SMTP_PORT)
    .option('--http-port <port>', 'HTTP port of the message API', parsePort, loadDevStackConfig().smtpCaptureHttpPort)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .parse()
    .opts<{ port: number; httpPort: number; host: string }>();
  const logger = createLogger({ service: 'smtp-capture', deploySha: 'dev', level: 'info', format: 'pretty' });
  const capture = await startSmtpCapture({ smtpPort: options.port, httpPort: options.httpPort, host: options.host });
  logger.info('smtp capture listening', { smtp: `${options.host}:${capture.smtpPort}`, messages: `${capture.httpUrl}/messages` });
  const stop = (signal: string) => {
    logger.info('smtp capture stopping', { signal });
    void capture.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`smtp-capture failed to start: ${redactString(err instanceof Error ? err.message : String(err))}\n`);
  process.exit(1);
});

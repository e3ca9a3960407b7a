/**
 * Entry point of the webhook receiver stand-in: `node --import tsx ops/stand-ins/webhook-receiver/main.ts --port
 * 8093`. Prints each delivery with its signature check; refuses NODE_ENV=production.
 */
import { Command, InvalidArgumentError } from 'commander';
import { standInEnvironment } from '../../../src/config/standIns';
import { createLogger } from '../../../src/logging/logger';
import { serveUntilSignalled } from '../serve';
import { webhookReceiverApp } from './server';

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw new InvalidArgumentError('a port number 0..65535');
  return port;
}

if (standInEnvironment().nodeEnv === 'production') {
  process.stderr.write('webhook-receiver: refusing to start with NODE_ENV=production.\n');
  process.exit(1);
}
const options = new Command('webhook-receiver')
  .description('Records PatchProof webhook deliveries and verifies their signatures, for dev and tests')
  .option('--port <port>', 'HTTP port', parsePort, 8093)
  .option('--host <host>', 'address to bind', '127.0.0.1')
  .option('--secret <secret...>', 'signing secrets to verify with (also POST /admin/secrets)')
  .parse()
  .opts<{ port: number; host: string; secret?: string[] }>();
const logger = createLogger({ service: 'webhook-receiver', deploySha: 'dev', level: 'info', format: 'pretty' });
const { app, state } = webhookReceiverApp((d) =>
  logger.info('webhook received', {
    eventId: d.eventId,
    type: d.type,
    verified: d.verified,
    signatures: d.signatures,
    answered: d.answered,
  }),
);
state.secrets = options.secret ?? [];
serveUntilSignalled({
  name: 'webhook receiver',
  app,
  port: options.port,
  host: options.host,
  logger,
  details: { deliveries: '/deliveries' },
});

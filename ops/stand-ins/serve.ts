import type { Express } from 'express';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../src/logging/logger';
import { redactString } from '../../src/logging/redact';

/**
 * Serves a stand-in's app until SIGINT/SIGTERM, then closes the server (and the stand-in's own state) and exits 0.
 * A port that cannot be bound exits 1 with the reason.
 */
export function serveUntilSignalled(options: {
  name: string;
  app: Express;
  port: number;
  host: string;
  logger: Logger;
  details?: Record<string, unknown>;
  onClose?: () => Promise<void>;
}): void {
  const { name, logger } = options;
  const server = options.app.listen(options.port, options.host, () => {
    const { port } = server.address() as AddressInfo;
    logger.info(`${name} listening`, { url: `http://${options.host}:${port}`, ...options.details });
  });
  server.on('error', (err) => {
    process.stderr.write(`${name}: cannot listen on ${options.host}:${options.port}: ${redactString(err.message)}\n`);
    process.exit(1);
  });
  const shutdown = (signal: string) => {
    logger.info(`${name} stopping`, { signal });
    server.close();
    server.closeAllConnections();
    void (options.onClose?.() ?? Promise.resolve()).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

import http from 'node:http';
import type { Registry } from 'prom-client';

/**
 * Serves this worker's own prom-client registry (/metrics) and a liveness probe (/health). The Temporal SDK's
 * metrics are served separately by the Runtime's Prometheus exporter (TEMPORAL_METRICS_BIND_ADDRESS).
 */
export function startWorkerMetricsServer(options: { registry: Registry; port: number; host: string }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      options.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'Content-Type': options.registry.contentType, 'Cache-Control': 'no-store' });
          res.end(body);
        },
        () => {
          res.writeHead(500).end();
        },
      );
      return;
    }
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve(server));
  });
}

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { verifyPatchProofSignature } from './verifySignature';

/**
 * Webhook receiver stand-in: records what PatchProof delivers and checks each signature with the documented
 * recipe (verifySignature.ts, the code of docs/API.md). Dev and tests only.
 *
 *   POST /hooks/<anything>       a delivery: 200, or the configured failure while failures remain
 *   GET  /deliveries             → [{eventId, type, verified, signatures, receivedAt, body}] oldest first
 *   DELETE /deliveries           → 204
 *   POST /admin/secrets          {secrets: [whsec_…]} the secrets to verify with (replaces the list)
 *   POST /admin/fail             {count, status?} answer `status` (503) to the next `count` deliveries
 *   GET  /health                 → {status:'ok'}
 */

export interface ReceivedDelivery {
  eventId: string;
  type: string;
  /** Null when no secret is configured to check with. */
  verified: boolean | null;
  /** How many v1 signatures the header carried (2 during a secret rotation). */
  signatures: number;
  /** The answer this stand-in gave. */
  answered: number;
  receivedAt: string;
  body: unknown;
}

export interface WebhookReceiver {
  url: string;
  deliveries: ReceivedDelivery[];
  setSecrets(secrets: string[]): void;
  failNext(count: number, status?: number): void;
  close(): Promise<void>;
}

const MAX_KEPT = 1000;

export function webhookReceiverApp(onDelivery?: (delivery: ReceivedDelivery) => void): {
  app: express.Express;
  state: { deliveries: ReceivedDelivery[]; secrets: string[]; failures: { remaining: number; status: number } };
} {
  const state = { deliveries: [] as ReceivedDelivery[], secrets: [] as string[], failures: { remaining: 0, status: 503 } };
  const app = express();
  app.disable('x-powered-by');
  app.post('/hooks/*path', express.text({ type: '*/*', limit: '1mb' }), (req, res) => {
    const raw = typeof req.body === 'string' ? req.body : '';
    const header = req.get('patchproof-signature') ?? '';
    const failing = state.failures.remaining > 0;
    if (failing) state.failures.remaining -= 1;
    let body: unknown = null;
    try {
      body = JSON.parse(raw);
    } catch {
      body = null;
    }
    const delivery: ReceivedDelivery = {
      eventId: req.get('patchproof-event-id') ?? '',
      type: req.get('patchproof-event-type') ?? '',
      verified: state.secrets.length === 0 ? null : state.secrets.some((secret) => verifyPatchProofSignature(secret, header, raw)),
      signatures: header.split(',').filter((f) => f.trim().startsWith('v1=')).length,
      answered: failing ? state.failures.status : 200,
      receivedAt: new Date().toISOString(),
      body,
    };
    state.deliveries.push(delivery);
    if (state.deliveries.length > MAX_KEPT) state.deliveries.shift();
    onDelivery?.(delivery);
    res.status(delivery.answered).json({ received: !failing });
  });
  app.get('/deliveries', (_req, res) => {
    res.json(state.deliveries);
  });
  app.delete('/deliveries', (_req, res) => {
    state.deliveries.length = 0;
    res.status(204).end();
  });
  app.post('/admin/secrets', express.json(), (req, res) => {
    const secrets = (req.body as { secrets?: unknown }).secrets;
    if (!Array.isArray(secrets) || !secrets.every((s) => typeof s === 'string'))
      return res.status(400).json({ error: 'secrets: string[]' });
    state.secrets = secrets;
    res.status(204).end();
  });
  app.post('/admin/fail', express.json(), (req, res) => {
    const { count, status } = req.body as { count?: unknown; status?: unknown };
    if (!Number.isInteger(count) || (count as number) < 0) return res.status(400).json({ error: 'count: a whole number' });
    state.failures = { remaining: count as number, status: Number.isInteger(status) ? (status as number) : 503 };
    res.status(204).end();
  });
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  return { app, state };
}

/** Starts the receiver in this process (tests); main.ts runs it as its own process for the dev stack. */
export async function startWebhookReceiver(options: { port?: number; host?: string } = {}): Promise<WebhookReceiver> {
  const { app, state } = webhookReceiverApp();
  const host = options.host ?? '127.0.0.1';
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(options.port ?? 0, host, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    deliveries: state.deliveries,
    setSecrets: (secrets) => {
      state.secrets = secrets;
    },
    failNext: (count, status = 503) => {
      state.failures = { remaining: count, status };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

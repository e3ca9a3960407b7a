import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

/**
 * SMTP capture: a real SMTP server (smtp-server) that keeps what it receives in memory, and an HTTP API to read it,
 * so dev and tests read a code from the mail like a user would. Dev and tests only.
 *
 *   GET    /messages?to=<address>   → [{id, from, to, subject, text, receivedAt}] newest last
 *   DELETE /messages                → 204
 *   GET    /health                  → {status:'ok'}
 *
 * Fault knobs by recipient local part: `reject-…` gets 550 (permanent), `tempfail-…` gets 451 (transient).
 */

export interface CapturedMessage {
  id: string;
  from: string;
  to: string[];
  subject: string;
  text: string;
  receivedAt: string;
}

export interface SmtpCapture {
  smtpPort: number;
  httpUrl: string;
  messages: CapturedMessage[];
  close(): Promise<void>;
}

const MAX_KEPT = 1000;
const MAX_MESSAGE_BYTES = 1024 * 1024;

function recipientFault(address: SMTPServerAddress): Error | null {
  const local = address.address.split('@')[0] ?? '';
  const fault = (text: string, responseCode: number) => Object.assign(new Error(text), { responseCode });
  if (local.startsWith('reject-')) return fault('5.1.1 mailbox unavailable', 550);
  if (local.startsWith('tempfail-')) return fault('4.2.1 try again later', 451);
  return null;
}

export async function startSmtpCapture(options: { smtpPort: number; httpPort: number; host?: string }): Promise<SmtpCapture> {
  const host = options.host ?? '127.0.0.1';
  const messages: CapturedMessage[] = [];

  const smtp = new SMTPServer({
    authOptional: true,
    // Plain SMTP on loopback: nodemailer's opportunistic STARTTLS would need a certificate we do not have.
    disabledCommands: ['STARTTLS'],
    size: MAX_MESSAGE_BYTES,
    logger: false,
    onAuth: (_auth, _session, callback) => callback(null, { user: 'capture' }),
    onRcptTo: (address, _session, callback) => callback(recipientFault(address) ?? undefined),
    onData: (stream, session, callback) => {
      simpleParser(stream).then(
        (parsed) => {
          messages.push({
            id: randomUUID(),
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            receivedAt: new Date().toISOString(),
          });
          if (messages.length > MAX_KEPT) messages.splice(0, messages.length - MAX_KEPT);
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    smtp.once('error', reject);
    smtp.listen(options.smtpPort, host, () => resolve());
  });
  const smtpPort = (smtp.server.address() as AddressInfo).port;

  const app = express();
  app.disable('x-powered-by');
  app.get('/health', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/messages', (req, res) => {
    const to = typeof req.query.to === 'string' ? req.query.to.toLowerCase() : undefined;
    res.json(to ? messages.filter((m) => m.to.includes(to)) : messages);
  });
  app.delete('/messages', (_req, res) => {
    messages.length = 0;
    res.status(204).end();
  });
  const http = app.listen(options.httpPort, host);
  await new Promise<void>((resolve, reject) => {
    http.once('listening', resolve);
    http.once('error', reject);
  });
  const httpPort = (http.address() as AddressInfo).port;

  return {
    smtpPort,
    httpUrl: `http://${host}:${httpPort}`,
    messages,
    async close() {
      http.closeAllConnections();
      await Promise.all([new Promise<void>((r) => http.close(() => r())), new Promise<void>((r) => smtp.close(() => r()))]);
    },
  };
}

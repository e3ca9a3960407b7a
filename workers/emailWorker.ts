import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import nodemailer from 'nodemailer';
import { createEmailActivities, type EmailActivityDeps } from '../activities/email/delivery';
import type { AppConfig, OwnerAuthConfig, WorkerVersioningConfig } from '../src/config';
import type { Logger } from '../src/logging/logger';
import { redactString } from '../src/logging/redact';
import { TASK_QUEUES } from '../workflows/shared/taskQueues';
import { ActivityLogContextInterceptor } from './interceptors';
import { workerDeploymentOptions } from './versioning';

export interface EmailWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: EmailActivityDeps;
  workflowBundlePath?: string;
  shutdownGraceMs?: number;
  shutdownForceMs?: number;
  versioning?: WorkerVersioningConfig;
  overrides?: Partial<WorkerOptions>;
}

/** The SMTP transport of the email worker; pooled, with timeouts so a dead relay fails an attempt, not hangs it. */
export function createSmtpTransport(smtp: OwnerAuthConfig['smtp']) {
  if (!smtp.host) throw new Error('SMTP_HOST is not set');
  return nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    ...(smtp.user && { auth: { user: smtp.user, pass: smtp.pass ?? '' } }),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
}

/** Fatal misconfiguration: the process exits 1 with this message, and never starts polling. */
export class FatalStartupError extends Error {}

/**
 * Email delivery's start-up checks, wherever its worker runs (its own process or the main worker's): SMTP_HOST set,
 * SMTP_PASS with SMTP_USER in production, and the relay answering (fatal in production; outside production the
 * capture stand-in may start after us, and deliveries retry until it is there). Returns the verified transport.
 */
export async function verifiedSmtpTransport(config: AppConfig, logger: Logger): Promise<ReturnType<typeof createSmtpTransport>> {
  assertSmtpConfigured(config);
  const smtp = config.ownerAuth.smtp;
  const transport = createSmtpTransport(smtp);
  try {
    await transport.verify();
    logger.info('smtp verified', { host: smtp.host, port: smtp.port });
  } catch (err) {
    const reason = redactString(err instanceof Error ? err.message : String(err));
    if (config.isProduction) throw new FatalStartupError(`SMTP verification failed: ${reason}`);
    logger.warn('smtp verification failed; continuing outside production', { reason });
  }
  return transport;
}

/** The configuration half of those checks, first thing at start, before any connection is tried. */
export function assertSmtpConfigured(config: AppConfig): void {
  const smtp = config.ownerAuth.smtp;
  if (!smtp.host) throw new FatalStartupError('SMTP_HOST: required in production for the email worker');
  if (config.isProduction && smtp.user && !smtp.pass) throw new FatalStartupError('SMTP_PASS: required when SMTP_USER is set');
}

/** The email task queue's worker: the delivery workflow and the SMTP activities, nothing else. */
export function createEmailWorker(options: EmailWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: TASK_QUEUES.email,
    ...(options.workflowBundlePath
      ? { workflowBundle: { codePath: options.workflowBundlePath } }
      : { workflowsPath: require.resolve('../workflows') }),
    activities: createEmailActivities(options.deps),
    interceptors: { activity: [(ctx) => ({ inbound: new ActivityLogContextInterceptor(ctx) })] },
    // SMTP is slow and the relay rate-limits: a few sends at a time is plenty.
    maxConcurrentActivityTaskExecutions: 8,
    shutdownGraceTime: options.shutdownGraceMs ?? 30_000,
    shutdownForceTime: options.shutdownForceMs ?? 60_000,
    ...workerDeploymentOptions(options.versioning),
    ...options.overrides,
  });
}

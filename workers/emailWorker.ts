import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import nodemailer from 'nodemailer';
import { createEmailActivities, type EmailActivityDeps } from '../activities/email/delivery';
import type { OwnerAuthConfig } from '../src/config';
import { TASK_QUEUES } from '../workflows/shared/taskQueues';
import { ActivityLogContextInterceptor } from './interceptors';

export interface EmailWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: EmailActivityDeps;
  workflowBundlePath?: string;
  shutdownGraceMs?: number;
  shutdownForceMs?: number;
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
    ...options.overrides,
  });
}

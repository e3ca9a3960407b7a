import { ApplicationFailure } from '@temporalio/activity';
import type { Connection } from 'mongoose';
import type { Transporter } from 'nodemailer';
import { CODE_TTL_SECONDS, emailMessageModel, type EmailMessageDocument } from '../../src/auth/models';
import type { Logger } from '../../src/logging/logger';
import { redactString } from '../../src/logging/redact';
import type { Metrics } from '../../src/metrics';
import { EMAIL_FAILURES } from '../../workflows/email/shared';

export interface EmailActivityDeps {
  mongo: Connection;
  logger: Logger;
  metrics?: Metrics;
  transport: Pick<Transporter, 'sendMail'>;
  from: string;
}

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

/** Renders a stored message; pure, so a test can check the wording without SMTP. */
export function renderEmail(message: Pick<EmailMessageDocument, 'kind' | 'code'>): RenderedEmail {
  const code = message.code ?? '';
  return {
    subject: 'Your PatchProof verification code',
    text: `Your PatchProof verification code is ${code}.\n\nIt expires in 15 minutes. If you did not ask for it, ignore this email.\n`,
    html: `<p>Your PatchProof verification code is <strong>${code}</strong>.</p><p>It expires in 15 minutes. If you did not ask for it, ignore this email.</p>`,
  };
}

/** SMTP reply codes 5xx are permanent (RFC 5321 §4.2.1); envelope errors are our own bad input. */
export function isPermanentSmtpError(err: unknown): boolean {
  const e = err as { responseCode?: unknown; code?: unknown };
  if (typeof e.responseCode === 'number') return e.responseCode >= 500 && e.responseCode < 600;
  return e.code === 'EENVELOPE';
}

/** Activities of the email task queue. Messages are addressed by id; the address and body never leave MongoDB. */
export function createEmailActivities(deps: EmailActivityDeps) {
  const messages = emailMessageModel(deps.mongo);
  const count = (outcome: string) => deps.metrics?.emailDeliveries.inc({ kind: 'verification-code', outcome });

  return {
    async deliverEmail(messageId: string): Promise<{ smtpMessageId?: string }> {
      const message = await messages.findById(messageId).lean();
      if (!message) throw ApplicationFailure.nonRetryable('email message not found', EMAIL_FAILURES.notFound);
      // Idempotent: a retry after a send whose status write was lost does not send again.
      if (message.status === 'sent') return message.smtpMessageId ? { smtpMessageId: message.smtpMessageId } : {};
      if (message.code === undefined)
        throw ApplicationFailure.nonRetryable('email message has no body left to send', EMAIL_FAILURES.notFound);
      // A code past its 15 minutes cannot be used: sending it late only confuses the owner.
      if (Date.now() - message.createdAt.getTime() > CODE_TTL_SECONDS * 1000) {
        await messages.updateOne({ _id: messageId }, { $unset: { code: 1 } });
        throw ApplicationFailure.nonRetryable('the code expired before it could be sent', EMAIL_FAILURES.expired);
      }

      const rendered = renderEmail(message);
      let info: { messageId?: string };
      try {
        info = await deps.transport.sendMail({ from: deps.from, to: message.to, ...rendered });
      } catch (err) {
        // SMTP replies can quote the recipient; the redaction masks addresses before anything is stored or thrown.
        const reason = redactString(err instanceof Error ? err.message : String(err)).slice(0, 300);
        const permanent = isPermanentSmtpError(err);
        await messages.updateOne({ _id: messageId }, { $inc: { attempts: 1 }, $set: { lastError: reason } });
        count(permanent ? 'permanent_failure' : 'transient_failure');
        deps.logger.warn('email delivery failed', { messageId, permanent, reason });
        throw permanent
          ? ApplicationFailure.nonRetryable(`SMTP refused the message: ${reason}`, EMAIL_FAILURES.permanent)
          : ApplicationFailure.retryable(`SMTP delivery failed: ${reason}`, EMAIL_FAILURES.transient);
      }
      await messages.updateOne(
        { _id: messageId },
        {
          $set: { status: 'sent', sentAt: new Date(), ...(info.messageId && { smtpMessageId: info.messageId }) },
          $inc: { attempts: 1 },
          // The plaintext lived only until delivery.
          $unset: { code: 1, lastError: 1 },
        },
      );
      count('sent');
      deps.logger.info('email sent', { messageId });
      return info.messageId ? { smtpMessageId: info.messageId } : {};
    },

    async recordEmailFailure(messageId: string, reason: string): Promise<void> {
      await messages.updateOne(
        { _id: messageId, status: { $ne: 'sent' } },
        { $set: { status: 'failed', failedAt: new Date(), lastError: reason }, $unset: { code: 1 } },
      );
      deps.logger.warn('email delivery given up', { messageId, reason });
    },
  };
}

export type EmailActivities = ReturnType<typeof createEmailActivities>;

import { defineQuery } from '@temporalio/workflow';

/**
 * Messages and types of the email-delivery workflow. The input is a message id only: the address and the body
 * (a verification code) stay in MongoDB and never enter the workflow history.
 */

export interface EmailDeliveryInput {
  messageId: string;
}

export type EmailDeliveryState = 'sending' | 'sent' | 'failed';

export interface EmailDeliveryStatus {
  state: EmailDeliveryState;
  /** Failure type when failed (SmtpPermanentFailure, SmtpTransientFailure, EmailMessageNotFound, …); never the address. */
  reason?: string;
}

export interface EmailDeliveryOutcome {
  messageId: string;
  status: 'sent' | 'failed';
  reason?: string;
}

export const EMAIL_FAILURES = {
  permanent: 'SmtpPermanentFailure',
  transient: 'SmtpTransientFailure',
  notFound: 'EmailMessageNotFound',
  expired: 'EmailExpired',
} as const;

export const emailDeliveryStatusQuery = defineQuery<EmailDeliveryStatus>('emailDeliveryStatus');

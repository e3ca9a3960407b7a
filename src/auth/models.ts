import { Schema, type Connection, type Model } from 'mongoose';

/** MongoDB models of owner authentication. Each write is single-document and keyed by a natural key. */

export const USER_ID = /^[0-9a-f]{24}$/;
export const CODE_TTL_SECONDS = 15 * 60;

/** One document per user: inserting it is the registration, so two racing registrations cannot both win. */
export interface SvdRegistrationDocument {
  _id: string;
  keyId: string;
  pmcHex: string;
  revoked: boolean;
  registeredBy: 'api-key' | 'email-token' | 'svd-session';
  createdAt: Date;
  updatedAt: Date;
  revokedAt?: Date;
  previousKeys: { keyId: string; pmcHex: string; retiredAt: Date; reason: 'replaced' | 'revoked' }[];
}

const svdRegistrationSchema = new Schema<SvdRegistrationDocument>(
  {
    _id: { type: String, required: true },
    keyId: { type: String, required: true },
    pmcHex: { type: String, required: true },
    revoked: { type: Boolean, required: true, default: false },
    registeredBy: { type: String, required: true },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    revokedAt: Date,
    previousKeys: {
      type: [{ keyId: String, pmcHex: String, retiredAt: Date, reason: String, _id: false }],
      default: [],
    },
  },
  { collection: 'svd_registrations', versionKey: false },
);
svdRegistrationSchema.index({ pmcHex: 1 });

/** Owner accounts reached through email: the email-verified token names the account, never the address. */
export interface OwnerAccountDocument {
  _id: string;
  email: string;
  createdAt: Date;
}

const ownerAccountSchema = new Schema<OwnerAccountDocument>(
  {
    _id: { type: String, required: true },
    email: { type: String, required: true },
    createdAt: { type: Date, required: true },
  },
  { collection: 'owner_accounts', versionKey: false },
);
ownerAccountSchema.index({ email: 1 }, { unique: true });

/**
 * One pending code per identifier (`_id`), stored only as a bcrypt hash. `code` exists only on legacy records from
 * before hashing (runbook "Verification Code Hashing Change"); they are treated as expired and deleted.
 */
export interface VerificationCodeDocument {
  _id: string;
  codeHash?: string;
  code?: string;
  attempts: number;
  createdAt: Date;
}

const verificationCodeSchema = new Schema<VerificationCodeDocument>(
  {
    _id: { type: String, required: true },
    codeHash: String,
    code: String,
    attempts: { type: Number, required: true, default: 0 },
    createdAt: { type: Date, required: true },
  },
  { collection: 'verification_codes', versionKey: false },
);
// MongoDB purges expired codes; FerretDB answers NotImplemented, which ensureIndexes tolerates: queries enforce expiry.
verificationCodeSchema.index({ createdAt: 1 }, { expireAfterSeconds: CODE_TTL_SECONDS });

export type EmailStatus = 'queued' | 'sent' | 'failed';

/**
 * An email to send. The workflow carries only `_id`; the activity renders from here and unsets `code` once the
 * message is sent or has failed for good, so the plaintext lives only until delivery.
 */
export interface EmailMessageDocument {
  _id: string;
  kind: 'verification-code';
  to: string;
  code?: string;
  status: EmailStatus;
  attempts: number;
  lastError?: string;
  smtpMessageId?: string;
  createdAt: Date;
  sentAt?: Date;
  failedAt?: Date;
}

const emailMessageSchema = new Schema<EmailMessageDocument>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true },
    to: { type: String, required: true },
    code: String,
    status: { type: String, required: true, enum: ['queued', 'sent', 'failed'] },
    attempts: { type: Number, required: true, default: 0 },
    lastError: String,
    smtpMessageId: String,
    createdAt: { type: Date, required: true },
    sentAt: Date,
    failedAt: Date,
  },
  { collection: 'email_messages', versionKey: false },
);
emailMessageSchema.index({ status: 1, createdAt: -1 });

function model<T>(connection: Connection, name: string, schema: Schema<T>): Model<T> {
  return (connection.models[name] as Model<T> | undefined) ?? connection.model<T>(name, schema);
}

export const svdRegistrationModel = (c: Connection) => model(c, 'SvdRegistration', svdRegistrationSchema);
export const ownerAccountModel = (c: Connection) => model(c, 'OwnerAccount', ownerAccountSchema);
export const verificationCodeModel = (c: Connection) => model(c, 'VerificationCode', verificationCodeSchema);
export const emailMessageModel = (c: Connection) => model(c, 'EmailMessage', emailMessageSchema);

/** Registers the auth models so ensureIndexes creates their indexes. */
export function registerAuthModels(connection: Connection): void {
  svdRegistrationModel(connection);
  ownerAccountModel(connection);
  verificationCodeModel(connection);
  emailMessageModel(connection);
}

import { randomInt, randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import bcrypt from 'bcrypt';
import { Types, type Connection } from 'mongoose';
import type { OwnerAuthConfig } from '../config';
import { startEmailDelivery } from '../email/launch';
import { DomainError } from '../errors';
import type { Logger } from '../logging/logger';
import type { Metrics } from '../metrics';
import { CODE_TTL_SECONDS, emailMessageModel, ownerAccountModel, verificationCodeModel } from './models';
import type { TokenKeyring } from './tokens';

/**
 * Email verification codes (docs/AUTH.md): 6 digits, stored only as a bcrypt hash (never in plaintext in a store, a
 * workflow history or a log line), 15 minutes (enforced in every query, and by a TTL index where the database has one), a bounded number of guesses
 * per code. The code reaches the email worker through a stored message that the workflow names by id only.
 */

export interface EmailCodeDeps {
  config: OwnerAuthConfig['codes'];
  mongo: Connection;
  temporal: Client;
  keyring: TokenKeyring;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}

export type CodeFailureReason = 'NotFoundOrExpired' | 'InvalidCode';

export function normaliseIdentifier(identifier: string): string {
  return identifier.trim().toLowerCase();
}

export function createEmailCodeService(deps: EmailCodeDeps) {
  // Resolved per call: route declarations are also built without a connection, for the OpenAPI document.
  const codes = () => verificationCodeModel(deps.mongo);
  const messages = () => emailMessageModel(deps.mongo);
  const accounts = () => ownerAccountModel(deps.mongo);
  const now = deps.now ?? Date.now;
  const fail = (reason: CodeFailureReason) => {
    deps.metrics.ownerLogins.inc({ method: 'email', outcome: 'failure' });
    deps.logger.info('email code refused', { reason });
    return new DomainError('CODE_INVALID', 'The code is wrong, used up or expired; request a new one.', { reason });
  };

  async function requestCode(rawIdentifier: string): Promise<{ messageId: string }> {
    const identifier = normaliseIdentifier(rawIdentifier);
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const codeHash = await bcrypt.hash(code, deps.config.saltRounds);
    const createdAt = new Date(now());
    // One live code per identifier: a new request replaces the old one (and any legacy plaintext record).
    await codes().replaceOne({ _id: identifier }, { _id: identifier, codeHash, attempts: 0, createdAt }, { upsert: true });
    const messageId = randomUUID();
    await messages().create({ _id: messageId, kind: 'verification-code', to: identifier, code, status: 'queued', attempts: 0, createdAt });
    await startEmailDelivery(deps.temporal, messageId);
    deps.logger.info('verification code issued', { messageId });
    return { messageId };
  }

  async function submitCode(rawIdentifier: string, code: string): Promise<{ token: string; userId: string; expiresAt: number }> {
    const identifier = normaliseIdentifier(rawIdentifier);
    const cutoff = new Date(now() - CODE_TTL_SECONDS * 1000);

    // Runbook "Verification Code Hashing Change": a plaintext record is treated as expired and deleted.
    const legacy = await codes().deleteOne({ _id: identifier, codeHash: { $exists: false } });
    if (legacy.deletedCount === 1) throw fail('NotFoundOrExpired');

    // Take one guess atomically before comparing, so parallel guesses cannot exceed the bound.
    const claimed = await codes()
      .findOneAndUpdate(
        { _id: identifier, codeHash: { $exists: true }, createdAt: { $gte: cutoff }, attempts: { $lt: deps.config.maxAttempts } },
        { $inc: { attempts: 1 } },
        { returnDocument: 'after' },
      )
      .lean();
    if (!claimed?.codeHash) {
      await codes().deleteOne({ _id: identifier, $or: [{ createdAt: { $lt: cutoff } }, { attempts: { $gte: deps.config.maxAttempts } }] });
      throw fail('NotFoundOrExpired');
    }
    if (!(await bcrypt.compare(code, claimed.codeHash))) throw fail('InvalidCode');
    // Single use: only the submit that deletes this very code gets a token.
    const consumed = await codes().deleteOne({ _id: identifier, codeHash: claimed.codeHash });
    if (consumed.deletedCount !== 1) throw fail('NotFoundOrExpired');

    const userId = await accountFor(identifier);
    const issued = deps.keyring.issue({ type: 'email-verified', userId, jti: randomUUID() });
    deps.metrics.ownerLogins.inc({ method: 'email', outcome: 'success' });
    deps.logger.info('email code accepted', { userId });
    return { token: issued.token, userId, expiresAt: issued.expiresAt };
  }

  /** The owner account of a verified address, created on first verification. */
  async function accountFor(email: string): Promise<string> {
    const existing = await accounts().findOne({ email }).lean();
    if (existing) return existing._id;
    try {
      const created = await accounts().create({ _id: new Types.ObjectId().toHexString(), email, createdAt: new Date(now()) });
      return created._id;
    } catch (err) {
      // A concurrent first verification won the unique email index: use its account.
      if ((err as { code?: number }).code !== 11000) throw err;
      const winner = await accounts().findOne({ email }).lean();
      if (!winner) throw err;
      return winner._id;
    }
  }

  return { requestCode, submitCode };
}

export type EmailCodeService = ReturnType<typeof createEmailCodeService>;

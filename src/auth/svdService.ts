import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import type { OwnerAuthConfig } from '../config';
import { DomainError } from '../errors';
import type { KmsClient } from '../kms/client';
import type { Logger } from '../logging/logger';
import { initialiseSvdSeries, type Metrics } from '../metrics';
import { svdRegistrationModel, type SvdRegistrationDocument } from './models';
import {
  challengePublicKey,
  localSessionSecret,
  makeChallenge,
  parseChallenge,
  parsePmc,
  PrivateKey,
  sessionProof,
  verifyChallengeSignature,
  type ParsedChallenge,
} from './svdCrypto';
import type { TokenKeyring } from './tokens';

/**
 * SVD login (docs/AUTH.md), closed against account takeover, challenge burning and token confusion:
 * - begin stores one challenge per call in a bounded per-user set, reveals nothing about the user, and cannot
 *   overwrite another client's challenge;
 * - complete checks M's embedded time, reads the replay mark and the pending entry in one round trip, checks the
 *   signature, and only then consumes the challenge (ZREM, atomic) and writes the replay mark, so someone who merely
 *   saw M cannot burn it;
 * - registration needs proof and never replaces a key silently; revoked keys cannot log in.
 */

export type RegistrationProof =
  | { kind: 'api-key'; userId: string; replace: boolean }
  | { kind: 'email-token'; userId: string }
  | { kind: 'svd-session'; userId: string; svdKeyId: string | undefined };

export interface SvdSecretDeriver {
  mode: 'kms' | 'local';
  /** `pmc` and `v2c` (PMC + H·G, already computed by the verification) are compressed points. */
  derive(challenge: ParsedChallenge, pmcHex: string, pmc: Uint8Array, v2c: Uint8Array): Promise<Buffer>;
}

export interface SvdServiceDeps {
  config: OwnerAuthConfig['svd'];
  redis: Redis;
  mongo: Connection;
  keyring: TokenKeyring;
  metrics: Metrics;
  logger: Logger;
  secrets: SvdSecretDeriver;
  now?: () => number;
}

export interface BeginResult {
  M: string;
  challengeId: string;
  expiresInSec: number;
}

export interface CompleteResult {
  token: string;
  expiresAt: number;
  kid: string;
}

/** A fixed point nobody registers; verifying against it keeps the timing of unknown users like known ones. */
const DECOY_PMC = Uint8Array.from(PrivateKey.fromHex('11'.repeat(32)).toPublicKey().encode(true) as number[]);

const pendingKey = (userId: string) => `svd:pending:${userId}`;
const usedKey = (digestHex: string) => `svd:used:${digestHex}`;

export function createSvdSecretDeriver(
  config: OwnerAuthConfig['svd'],
  kms: KmsClient,
  /** The active SVD key after a rotation (src/rotation/keyring.ts); SVD_KMS_KID without one. */
  activeKeyId?: () => Promise<string>,
): SvdSecretDeriver {
  if (config.mode === 'kms') {
    return {
      mode: 'kms',
      async derive(challenge, pmcHex) {
        const keyIdentifier = activeKeyId ? await activeKeyId() : config.kmsKeyIdentifier;
        const { sharedSecretHex } = await kms.deriveSvdSecret({ Mhex: challenge.hex, pmcHex, keyIdentifier });
        return Buffer.from(sharedSecretHex, 'hex');
      },
    };
  }
  // Dev and tests only (config refuses local mode in production). Without a configured key each process makes one:
  // the secret is never stored, so nothing depends on it surviving a restart.
  const pms = config.localPmsWif ? PrivateKey.fromWif(config.localPmsWif) : PrivateKey.fromRandom();
  const pmsPublic = Uint8Array.from(pms.toPublicKey().encode(true) as number[]);
  return {
    mode: 'local',
    derive: (challenge, _pmcHex, pmc, v2c) => Promise.resolve(localSessionSecret(pms, pmc, challenge, { v2c, pmsPublic })),
  };
}

export function createSvdService(deps: SvdServiceDeps) {
  const { config, redis, keyring, metrics, logger } = deps;
  // Resolved per call: route declarations are also built without a connection, for the OpenAPI document.
  const registrations = () => svdRegistrationModel(deps.mongo);
  const now = deps.now ?? Date.now;
  initialiseSvdSeries(metrics, keyring.activeKid, config.challengeTtlSec);
  const event = (eventType: string) => metrics.svdEvents.inc({ event_type: eventType, kid: keyring.activeKid });
  const loginFailed = () => metrics.ownerLogins.inc({ method: 'svd', outcome: 'failure' });

  const reject = (
    eventType: string,
    code: 'SVD_EXPIRED' | 'SVD_BAD_CHALLENGE' | 'SVD_REPLAYED' | 'SVD_INVALID_SIGNATURE',
    message: string,
  ) => {
    event(eventType);
    loginFailed();
    logger.info('svd login refused', { reason: eventType });
    return new DomainError(code, message);
  };

  // Per-step time (patchproof_request_step_duration_seconds) shows where a login's time goes; test/bench/svd-login.ts
  // prints it.
  const timed = <T>(step: string, fn: () => T): T => {
    const started = performance.now();
    const done = () => metrics.requestStepDuration.observe({ step }, (performance.now() - started) / 1000);
    const result = fn();
    if (result instanceof Promise) return result.finally(done) as T;
    done();
    return result;
  };

  async function begin(userId: string): Promise<BeginResult> {
    const nowMs = now();
    const challenge = timed('svd_challenge', () => makeChallenge(Math.floor(nowMs / 1000)));
    const ttlMs = config.challengeTtlSec * 1000;
    // No registry lookup: the answer and its timing are the same for every user id.
    await timed('svd_redis_begin', () =>
      redis
        .multi()
        .zadd(pendingKey(userId), nowMs, challenge.digestHex)
        .zremrangebyscore(pendingKey(userId), '-inf', nowMs - ttlMs)
        // Bounded per user: the oldest challenges give way, so begin cannot grow Redis without limit.
        .zremrangebyrank(pendingKey(userId), 0, -(config.maxPendingChallenges + 1))
        .pexpire(pendingKey(userId), ttlMs)
        .exec(),
    ).then(throwOnMultiError);
    event('begin');
    return { M: challenge.hex, challengeId: challenge.digestHex, expiresInSec: config.challengeTtlSec };
  }

  async function complete(userId: string, mHex: string, signatureHex: string): Promise<CompleteResult> {
    const challenge = parseChallenge(mHex);
    if (!challenge) throw reject('bad_challenge', 'SVD_BAD_CHALLENGE', 'M must be 48 hex characters.');
    const nowMs = now();
    const nowSec = Math.floor(nowMs / 1000);
    if (challenge.issuedAtSec > nowSec + config.clockSkewSec) {
      throw reject('bad_challenge', 'SVD_BAD_CHALLENGE', 'The challenge was not issued by this server.');
    }
    if (nowSec - challenge.issuedAtSec > config.challengeTtlSec + config.clockSkewSec) {
      throw reject('expired', 'SVD_EXPIRED', 'The challenge has expired; begin again.');
    }
    // The replay mark and the pending entry in one atomic read: a concurrent complete consumes both in one
    // transaction, so this sees either both before or both after.
    const state = await timed('svd_redis_check', () =>
      redis.multi().exists(usedKey(challenge.digestHex)).zscore(pendingKey(userId), challenge.digestHex).exec(),
    );
    throwOnMultiError(state);
    if (state?.[0]?.[1] === 1) throw reject('replayed', 'SVD_REPLAYED', 'This challenge was already used.');
    const issuedAtMs = state?.[1]?.[1] as string | null | undefined;
    if (issuedAtMs === null || issuedAtMs === undefined || nowMs - Number(issuedAtMs) > config.challengeTtlSec * 1000) {
      throw reject('expired', 'SVD_EXPIRED', 'No pending challenge matches; begin again.');
    }

    const registration = await timed('svd_key_lookup', () => registrations().findById(userId).lean().exec());
    const pmc = registration ? parsePmc(registration.pmcHex) : null;
    if (registration && !pmc) throw new Error('stored PMC does not parse');
    // Unknown users and revoked keys cost the same verify and get the same answer as a wrong signature.
    const { v2c, verdict } = timed('svd_verify', () => {
      const key = challengePublicKey(pmc ?? DECOY_PMC, challenge);
      return { v2c: key, verdict: verifyChallengeSignature(pmc ?? DECOY_PMC, challenge, signatureHex, key) };
    });
    if (!registration || !pmc || registration.revoked) {
      throw reject('refused', 'SVD_INVALID_SIGNATURE', 'The signature does not verify.');
    }
    if (verdict === 'high_s') throw reject('malleable_reject', 'SVD_INVALID_SIGNATURE', 'Non-canonical (high-S) signature.');
    if (verdict !== 'valid' || !v2c) throw reject('invalid', 'SVD_INVALID_SIGNATURE', 'The signature does not verify.');

    // The signature is good: consume the challenge exactly once, then mark it used for the rest of its life.
    // One transaction, so nobody can see the challenge gone without the mark (and misreport a replay as expired).
    const consumed = await timed('svd_redis_consume', () =>
      redis
        .multi()
        .zrem(pendingKey(userId), challenge.digestHex)
        .set(usedKey(challenge.digestHex), '1', 'EX', 2 * (config.challengeTtlSec + config.clockSkewSec), 'NX')
        .exec(),
    );
    throwOnMultiError(consumed);
    if (consumed?.[0]?.[1] !== 1) throw reject('replayed', 'SVD_REPLAYED', 'This challenge was already used.');

    const secret = await timed('svd_secret', () => deps.secrets.derive(challenge, registration.pmcHex, pmc, v2c));
    const issued = timed('svd_token', () =>
      keyring.issue({
        type: 'svd-session',
        userId,
        jti: challenge.digestHex,
        claims: {
          svd_kid: registration.keyId,
          cnf: { msha256: challenge.digestHex, svd_proof: sessionProof(secret, userId, challenge) },
        },
      }),
    );
    secret.fill(0);
    event('complete');
    metrics.svdChallengeAge.observe({ kid: keyring.activeKid }, Math.max(0, (nowMs - Number(issuedAtMs)) / 1000));
    metrics.ownerLogins.inc({ method: 'svd', outcome: 'success' });
    timed('svd_log', () => logger.info('svd login completed', { userId, kid: keyring.activeKid }));
    return { token: issued.token, expiresAt: issued.expiresAt, kid: keyring.activeKid };
  }

  async function register(pmcHex: string, proof: RegistrationProof): Promise<{ userId: string; keyId: string; replaced: boolean }> {
    const pmc = parsePmc(pmcHex);
    if (!pmc) throw new DomainError('VALIDATION_FAILED', 'pmcHex is not a compressed secp256k1 public key.');
    const normalised = pmcHex.toLowerCase();
    const { userId } = proof;
    const at = new Date(now());
    const keyId = randomBytes(12).toString('hex');
    const fresh: SvdRegistrationDocument = {
      _id: userId,
      keyId,
      pmcHex: normalised,
      revoked: false,
      registeredBy: proof.kind,
      createdAt: at,
      updatedAt: at,
      previousKeys: [],
    };

    const existing = await registrations().findById(userId).lean();
    if (!existing) {
      if (proof.kind === 'svd-session') throw new DomainError('FORBIDDEN', 'No key is registered for this session.');
      try {
        await registrations().create(fresh);
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw conflict();
        throw err;
      }
      event('register');
      logger.info('svd key registered', { userId, keyId, by: proof.kind });
      return { userId, keyId, replaced: false };
    }

    // A key exists: replacing it needs the old key (a session it proved), an admin's explicit replace, or, once the
    // key is revoked, the account's verified email.
    const allowed =
      (proof.kind === 'api-key' && proof.replace) ||
      (proof.kind === 'svd-session' && !existing.revoked && proof.svdKeyId === existing.keyId) ||
      (proof.kind === 'email-token' && existing.revoked);
    if (!allowed) {
      if (proof.kind === 'svd-session') throw new DomainError('FORBIDDEN', 'This session was not proved with the current key.');
      throw conflict();
    }
    // Compare-and-set on the key we checked: a concurrent replacement makes this one fail rather than overwrite.
    const updated = await registrations().findOneAndUpdate(
      { _id: userId, keyId: existing.keyId },
      {
        $set: { keyId, pmcHex: normalised, revoked: false, registeredBy: proof.kind, updatedAt: at },
        $unset: { revokedAt: 1 },
        $push: {
          previousKeys: {
            keyId: existing.keyId,
            pmcHex: existing.pmcHex,
            retiredAt: at,
            reason: existing.revoked ? 'revoked' : 'replaced',
          },
        },
      },
      { returnDocument: 'after' },
    );
    if (!updated) throw conflict();
    event('replace');
    logger.info('svd key replaced', { userId, keyId, previousKeyId: existing.keyId, by: proof.kind });
    return { userId, keyId, replaced: true };
  }

  async function revoke(userId: string): Promise<boolean> {
    const at = new Date(now());
    const result = await registrations().updateOne(
      { _id: userId, revoked: false },
      { $set: { revoked: true, revokedAt: at, updatedAt: at } },
    );
    if (result.modifiedCount === 1) {
      event('revoke');
      logger.info('svd key revoked', { userId });
    }
    return result.modifiedCount === 1;
  }

  /** The current registration, for session checks: a session stays valid only while its key is current. */
  async function currentKeyId(userId: string): Promise<string | null> {
    const registration = await registrations().findById(userId, { keyId: 1, revoked: 1 }).lean();
    return registration && !registration.revoked ? registration.keyId : null;
  }

  return { begin, complete, register, revoke, currentKeyId };
}

export type SvdService = ReturnType<typeof createSvdService>;

function conflict(): DomainError {
  return new DomainError(
    'CONFLICT',
    'A key is already registered for this user. Replace it with a session of the current key, or ask an administrator.',
  );
}

function throwOnMultiError(results: [Error | null, unknown][] | null): void {
  if (!results) throw new Error('redis transaction aborted');
  const failed = results.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
}

import { createHash } from 'node:crypto';
import { PublicKey } from '@bsv/sdk';
import { ApplicationFailure } from '@temporalio/activity';
import type { Connection } from 'mongoose';
import { addressOfPublicKey, type Network } from '../../src/chain/addresses';
import type { OwnerAuthConfig, PoolConfig } from '../../src/config';
import type { KmsClient } from '../../src/kms/client';
import { isKmsError } from '../../src/kms/errors';
import type { Logger } from '../../src/logging/logger';
import type { KmsKeyPurpose } from '../../src/rotation/ids';
import { JWT_KID_PATTERN } from '../../src/rotation/ids';
import { jwtKeysState, newJwtSecret, readKey, recordKey, sealJwtSecret, setActiveKey, type Keyring } from '../../src/rotation/keyring';
import { ROTATION_FAILURES, type KeyInfo } from '../../workflows/rotation/shared';

export interface RotationActivityDeps {
  mongo: Connection;
  kms: KmsClient;
  logger: Logger;
  network: Network;
  pool: PoolConfig;
  keys: Keyring;
  /** The environment's JWT keyring and the secret that seals rotated JWT keys in the store. */
  jwt: { env: Pick<OwnerAuthConfig['jwt'], 'keys' | 'activeKid'>; jwtSecret: string };
}

/** A fixed, valid client key for the SVD derivation check: the generator point's double, nobody's key. */
const PREFLIGHT_PMC_HEX = '02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5';

/**
 * Activities of the rotation workflows. Preflight only reads from and signs through the KMS; every store write is a
 * single-document upsert keyed by purpose and key identifier, so a retry repeats it harmlessly. Nothing secret is
 * returned: KMS keys are named by identifier and public key, JWT keys by kid.
 */
export function createRotationActivities(deps: RotationActivityDeps) {
  const { mongo, kms, logger, keys } = deps;

  function kmsFailure(err: unknown, what: string): never {
    if (isKmsError(err) && !err.retryable) {
      throw ApplicationFailure.nonRetryable(`${what}: ${err.message}`, ROTATION_FAILURES.preflight, { kind: err.kind });
    }
    throw err;
  }

  async function keyInfo(purpose: KmsKeyPurpose, keyIdentifier: string): Promise<KeyInfo> {
    const recorded = await readKey(mongo, purpose, keyIdentifier);
    let pubKeyHex = recorded?.pubKeyHex ?? undefined;
    if (!pubKeyHex) {
      kms.forgetPublicKey(keyIdentifier);
      pubKeyHex = (await kms.publicKey(keyIdentifier).catch((err: unknown) => kmsFailure(err, `public key of ${keyIdentifier}`))).pubKeyHex;
    }
    if (purpose !== 'funding') return { keyIdentifier, pubKeyHex };
    const address =
      recorded?.address ??
      (keyIdentifier === deps.pool.fundingKeyIdentifier && deps.pool.fundingAddress
        ? deps.pool.fundingAddress
        : addressOfPublicKey(PublicKey.fromString(pubKeyHex).toHash() as number[], deps.network));
    return { keyIdentifier, pubKeyHex, address };
  }

  return {
    /**
     * The new key exists in the KMS, signs a test digest, the signature verifies against its public key (the KMS
     * client checks every signature), and for SVD it derives a session secret. Returns the old (active) and new keys.
     */
    async preflightRotationKey(input: { purpose: KmsKeyPurpose; newKeyIdentifier: string }): Promise<{ oldKey: KeyInfo; newKey: KeyInfo }> {
      const { purpose, newKeyIdentifier } = input;
      keys.forget();
      const oldIdentifier = await keys.activeKeyId(purpose);
      if (oldIdentifier === newKeyIdentifier) {
        throw ApplicationFailure.nonRetryable(`${newKeyIdentifier} is already the active ${purpose} key`, ROTATION_FAILURES.sameKey);
      }
      const previous = await readKey(mongo, purpose, newKeyIdentifier);
      if (previous && previous.state !== 'cancelled') {
        throw ApplicationFailure.nonRetryable(
          `${newKeyIdentifier} was already used as a ${purpose} key (${previous.state}); rotate to a new key identifier`,
          ROTATION_FAILURES.sameKey,
        );
      }
      kms.forgetPublicKey(newKeyIdentifier);
      const fresh = await kms.publicKey(newKeyIdentifier).catch((err: unknown) => {
        // A rotation never cuts over to a key the operator did not provision: unknown to the KMS is a refusal.
        if (isKmsError(err) && err.details.status === 404) {
          throw ApplicationFailure.nonRetryable(
            `${newKeyIdentifier} does not exist in the KMS; create it there (and grant PatchProof use of it) before rotating`,
            ROTATION_FAILURES.preflight,
            { kind: 'unknown_key' },
          );
        }
        return kmsFailure(err, `public key of ${newKeyIdentifier}`);
      });
      if (purpose === 'issuer' && (await keys.snapshot()).revocations.some((r) => r._id === fresh.pubKeyHex)) {
        throw ApplicationFailure.nonRetryable(`${newKeyIdentifier} is a revoked issuer key`, ROTATION_FAILURES.preflight);
      }
      const digestHex = createHash('sha256')
        .update(`patchproof key rotation preflight\n${purpose}\n${newKeyIdentifier}\n${fresh.pubKeyHex}`)
        .digest('hex');
      const [signature] = await kms
        .sign([{ keyIdentifier: newKeyIdentifier, digestHex }])
        .catch((err: unknown) => kmsFailure(err, `test signature of ${newKeyIdentifier}`));
      if (!signature || signature.pubKeyHex !== fresh.pubKeyHex) {
        throw ApplicationFailure.nonRetryable(`test signature of ${newKeyIdentifier} came from another key`, ROTATION_FAILURES.preflight);
      }
      if (purpose === 'svd') {
        const secret = await kms
          .deriveSvdSecret({ Mhex: digestHex.slice(0, 48), pmcHex: PREFLIGHT_PMC_HEX, keyIdentifier: newKeyIdentifier })
          .catch((err: unknown) => kmsFailure(err, `SVD secret derivation with ${newKeyIdentifier}`));
        if (secret.sharedSecretHex.length !== 64) {
          throw ApplicationFailure.nonRetryable(
            `SVD derivation with ${newKeyIdentifier} gave no 32-byte secret`,
            ROTATION_FAILURES.preflight,
          );
        }
      }
      const oldKey = await keyInfo(purpose, oldIdentifier);
      const newKey: KeyInfo = {
        keyIdentifier: newKeyIdentifier,
        pubKeyHex: fresh.pubKeyHex,
        ...(purpose === 'funding' && {
          address: addressOfPublicKey(PublicKey.fromString(fresh.pubKeyHex).toHash() as number[], deps.network),
        }),
      };
      if (oldKey.pubKeyHex === newKey.pubKeyHex) {
        throw ApplicationFailure.nonRetryable(`${newKeyIdentifier} is the same KMS key as ${oldIdentifier}`, ROTATION_FAILURES.sameKey);
      }
      logger.info('rotation preflight passed', { purpose, oldKey: oldIdentifier, newKey: newKeyIdentifier });
      return { oldKey, newKey };
    },

    /** Verifiers accept both keys from here on; the old one still signs. */
    async stageRotationKey(input: { purpose: KmsKeyPurpose; oldKey: KeyInfo; newKey: KeyInfo; rotationId: string }): Promise<void> {
      const current = await readKey(mongo, input.purpose, input.oldKey.keyIdentifier);
      if (current?.state !== 'active') await recordKey(mongo, input.purpose, input.oldKey, 'active', input.rotationId);
      await recordKey(mongo, input.purpose, input.newKey, 'staged', input.rotationId);
      keys.forget();
      logger.info('rotation key staged', { purpose: input.purpose, keyIdentifier: input.newKey.keyIdentifier });
    },

    /** Cancel before the cutover: the staged key stops verifying; the old key never stopped being active. */
    async unstageRotationKey(input: { purpose: KmsKeyPurpose; newKey: KeyInfo; rotationId: string }): Promise<void> {
      await recordKey(mongo, input.purpose, input.newKey, 'cancelled', input.rotationId);
      keys.forget();
      logger.info('rotation cancelled; staged key withdrawn', { purpose: input.purpose, keyIdentifier: input.newKey.keyIdentifier });
    },

    /** The cutover: the new key signs from now on in every process (within KEY_SETTINGS_CACHE_MS); the old one verifies. */
    async cutOverRotationKey(input: { purpose: KmsKeyPurpose; oldKey: KeyInfo; newKey: KeyInfo; rotationId: string }): Promise<void> {
      await recordKey(mongo, input.purpose, input.newKey, 'active', input.rotationId);
      await setActiveKey(mongo, input.purpose, input.newKey.keyIdentifier, input.rotationId);
      await recordKey(mongo, input.purpose, input.oldKey, 'previous', input.rotationId);
      keys.forget();
      logger.info('rotation cut over', { purpose: input.purpose, from: input.oldKey.keyIdentifier, to: input.newKey.keyIdentifier });
    },

    /** After the grace period: the old key is retired, and optionally disabled in the KMS. */
    async retireRotationKey(input: { purpose: KmsKeyPurpose; oldKey: KeyInfo; rotationId: string; disableInKms: boolean }): Promise<void> {
      await recordKey(mongo, input.purpose, input.oldKey, 'retired', input.rotationId);
      keys.forget();
      if (input.disableInKms) {
        await kms.disableKey(input.oldKey.keyIdentifier).catch((err: unknown) => {
          if (isKmsError(err) && !err.retryable) {
            throw ApplicationFailure.nonRetryable(`disable ${input.oldKey.keyIdentifier}: ${err.message}`, ROTATION_FAILURES.kmsRejected, {
              kind: err.kind,
            });
          }
          throw err;
        });
      }
      logger.info('rotation key retired', {
        purpose: input.purpose,
        keyIdentifier: input.oldKey.keyIdentifier,
        disabledInKms: input.disableInKms,
      });
    },

    /**
     * Adds a JWT kid that verifies but does not sign yet. A kid listed in JWT_KEYS keeps its secret there; a new one
     * gets a random secret, sealed into the store. Returns kids only.
     */
    async addJwtKey(input: { newKid?: string; rotationId: string; requestedAt: string }): Promise<{ kid: string; previousKid: string }> {
      keys.forget();
      const state = jwtKeysState(deps.jwt.env, await keys.snapshot(), deps.jwt.jwtSecret);
      const kid = input.newKid ?? `jwt-${input.requestedAt.replace(/[^0-9]/g, '').slice(0, 14)}`;
      if (!JWT_KID_PATTERN.test(kid)) throw ApplicationFailure.nonRetryable(`${kid} is not a valid kid`, ROTATION_FAILURES.unknownKid);
      if (kid === state.activeKid) throw ApplicationFailure.nonRetryable(`${kid} is already the active kid`, ROTATION_FAILURES.sameKey);
      const existing = await readKey(mongo, 'jwt', kid);
      if (existing && existing.rotationId !== input.rotationId) {
        throw ApplicationFailure.nonRetryable(
          `kid ${kid} was used before (${existing.state}); choose a new kid`,
          ROTATION_FAILURES.sameKey,
        );
      }
      if (!existing) {
        const inEnvironment = deps.jwt.env.keys[kid] !== undefined;
        await recordKey(
          mongo,
          'jwt',
          { keyIdentifier: kid, ...(!inEnvironment && { sealedSecret: sealJwtSecret(newJwtSecret(), deps.jwt.jwtSecret, kid) }) },
          'staged',
          input.rotationId,
        );
      }
      keys.forget();
      logger.info('jwt kid added', { kid, previousKid: state.activeKid });
      return { kid, previousKid: state.activeKid };
    },

    /** New tokens carry the new kid; the previous kid keeps verifying. */
    async activateJwtKey(input: { kid: string; previousKid: string; rotationId: string }): Promise<void> {
      await recordKey(mongo, 'jwt', { keyIdentifier: input.kid }, 'active', input.rotationId);
      await setActiveKey(mongo, 'jwt', input.kid, input.rotationId);
      await recordKey(mongo, 'jwt', { keyIdentifier: input.previousKid }, 'previous', input.rotationId);
      keys.forget();
      logger.info('jwt kid activated', { kid: input.kid, previousKid: input.previousKid });
    },

    /** Every token the previous kid signed has expired: it stops verifying (even if JWT_KEYS still lists it). */
    async removeJwtKey(input: { kid: string; rotationId: string }): Promise<void> {
      await recordKey(mongo, 'jwt', { keyIdentifier: input.kid }, 'retired', input.rotationId);
      keys.forget();
      logger.info('jwt kid removed', { kid: input.kid });
    },
  };
}

export type RotationActivities = ReturnType<typeof createRotationActivities>;

import { ApplicationFailure } from '@temporalio/activity';
import type { Connection } from 'mongoose';
import { loadKeyDirectory } from '../../src/issuerKeys/directory';
import { issuerKeyRevocationModel, type RevocationRequest } from '../../src/issuerKeys/models';
import type { KmsClient } from '../../src/kms/client';
import type { Logger } from '../../src/logging/logger';
import type { Keyring } from '../../src/rotation/keyring';
import type { Redis } from 'ioredis';
import { announceVerdictChange } from '../../src/registration/verdictChanges';
import { ISSUER_KEY_FAILURES, type RecordedRevocation, type RevocableKey } from '../../workflows/issuerKeys/shared';

export interface IssuerKeyActivityDeps {
  /** API processes keep verification answers; a revocation can change any of them. */
  redis?: Pick<Redis, 'publish'>;
  mongo: Connection;
  kms: KmsClient;
  logger: Logger;
  keys: Keyring;
}

/**
 * Activities of the issuer key revocation workflow. The check reads the key directory fresh (not through the
 * cache); the record is one single-document write keyed by the public key, so a retry or a second revocation of
 * the same key repeats it harmlessly. Only key identifiers, public keys, times and the operator's reason are
 * returned or logged.
 */
export function createIssuerKeyActivities(deps: IssuerKeyActivityDeps) {
  const { mongo, kms, logger, keys } = deps;

  return {
    /**
     * The key is in the directory; without `force`, it is not one that signs now or is staged to (revoking it
     * would make every new record verify as revoked-key: rotate to a new key first, then revoke the old one).
     */
    async checkIssuerKeyRevocation(input: { kid: string; force: boolean }): Promise<RevocableKey & { signing: boolean }> {
      keys.forget();
      const directory = await loadKeyDirectory({ keys, kms });
      const key = directory.keys.find((k) => k.kid === input.kid);
      if (!key) {
        throw ApplicationFailure.nonRetryable(
          `${input.kid} is not an issuer key of the key directory (known: ${directory.keys.map((k) => k.kid).join(', ')})`,
          ISSUER_KEY_FAILURES.unknownKey,
        );
      }
      // The key that signs now, or one a rotation staged to sign next (both `active` in the directory until revoked).
      const snapshot = await keys.snapshot();
      const activeKid = await keys.activeKeyId('issuer');
      const signing =
        key.kid === activeKid ||
        snapshot.keys.some(
          (k) => k.purpose === 'issuer' && k.pubKeyHex === key.publicKey && (k.state === 'active' || k.state === 'staged'),
        );
      if (signing && key.status !== 'revoked' && !input.force) {
        throw ApplicationFailure.nonRetryable(
          `${input.kid} signs new records (or is staged to): rotate the issuer key first (patchproof rotate kms --purpose issuer), ` +
            'then revoke this one; or force it, and every new record verifies as revoked-key until the rotation',
          ISSUER_KEY_FAILURES.refused,
        );
      }
      return { kid: key.kid, publicKey: key.publicKey, status: key.status, signing };
    },

    /**
     * Records the revocation of a public key. The effective time is the earliest any request asked for (a later
     * request never undoes or delays an earlier one); each workflow run's request is kept once.
     */
    async recordIssuerKeyRevocation(input: {
      kid: string;
      publicKey: string;
      revokedAt: string;
      reason: string;
      requestedBy: string;
      workflowId: string;
      runId: string;
    }): Promise<RecordedRevocation> {
      const revocations = issuerKeyRevocationModel(mongo);
      const asked = new Date(input.revokedAt);
      const existing = await revocations.findById(input.publicKey).lean();
      const request: RevocationRequest = {
        kid: input.kid,
        revokedAt: asked,
        reason: input.reason,
        requestedBy: input.requestedBy,
        recordedAt: new Date(),
        workflowId: input.workflowId,
        runId: input.runId,
      };
      const earlier = !existing || asked.getTime() < existing.revokedAt.getTime();
      const requests = existing?.requests ?? [];
      await revocations.replaceOne(
        { _id: input.publicKey },
        {
          _id: input.publicKey,
          kid: existing?.kid ?? input.kid,
          revokedAt: earlier ? asked : existing.revokedAt,
          reason: earlier ? input.reason : existing.reason,
          requests: requests.some((r) => r.runId === input.runId) ? requests : [...requests, request],
          updatedAt: new Date(),
        },
        { upsert: true },
      );
      keys.forget();
      await announceVerdictChange(deps.redis, 'all', logger);
      // A retry of this run after a write that landed finds its own request: not a change.
      const changed = earlier && !requests.some((r) => r.runId === input.runId);
      const effective = earlier ? { revokedAt: asked, reason: input.reason } : { revokedAt: existing.revokedAt, reason: existing.reason };
      logger.warn('issuer key revoked', {
        kid: input.kid,
        revokedAt: effective.revokedAt.toISOString(),
        changed,
        requestedBy: input.requestedBy,
      });
      return { revokedAt: effective.revokedAt.toISOString(), reason: effective.reason, changed };
    },
  };
}

export type IssuerKeyActivities = ReturnType<typeof createIssuerKeyActivities>;

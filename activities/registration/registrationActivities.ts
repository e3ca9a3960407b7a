import { ApplicationFailure } from '@temporalio/activity';
import type { Connection } from 'mongoose';
import { anchorPushes } from '../../src/anchoring/anchorScript';
import { merkleProofs, type MerkleProof } from '../../src/anchoring/merkle';
import type { Network } from '../../src/chain/addresses';
import type { SpendableOutput } from '../../src/chain/transactions';
import type { PoolConfig } from '../../src/config';
import type { KmsClient } from '../../src/kms/client';
import { isKmsError } from '../../src/kms/errors';
import type { Logger } from '../../src/logging/logger';
import { recordAnchorConfirmed, recordAnchorPlanned, recordRegistrationOutcome, type Metrics } from '../../src/metrics';
import { resolvePoolAccounts } from '../../src/pool/accounts';
import { minWorthwhileChange, p2pkhTransactionFee } from '../../src/pool/planning';
import { createReservations } from '../../src/pool/reservations';
import { readPoolSettings } from '../../src/pool/settings';
import { patchModel, type PatchDocument } from '../../src/registration/models';
import { registrationRecord, registrationRecordHash, type RegistrationRequest } from '../../src/registration/record';
import type { WocClient } from '../../src/woc/client';
import { POOL_FAILURES } from '../../workflows/pool/shared';

export interface RegistrationActivityDeps {
  mongo: Connection;
  kms: KmsClient;
  woc: WocClient;
  logger: Logger;
  network: Network;
  pool: PoolConfig;
  issuerKeyIdentifier: string;
  anchorConfirmations: number;
  metrics?: Metrics;
}

/** Bytes an anchor's data output adds beyond a P2PKH output: tag, version, root and count pushes. */
const ANCHOR_OUTPUT_EXTRA_BYTES = 70;

/** Activities of the registration workflow; each is idempotent (keyed by uid, or answered from what is stored). */
export function createRegistrationActivities(deps: RegistrationActivityDeps) {
  const patches = patchModel(deps.mongo);
  const reservations = createReservations(deps.mongo);

  async function stored(uid: string): Promise<PatchDocument> {
    const patch = await patches.findById(uid).lean();
    if (!patch) throw ApplicationFailure.nonRetryable(`no registration record for ${uid}`, 'RegistrationMissing');
    return patch;
  }

  return {
    /** Writes the pending record once (a retry finds it) and returns its canonical hash. */
    async persistPendingRegistration(input: {
      registrationId: string;
      request: RegistrationRequest;
      requestHash: string;
      idempotencyKey?: string;
      registeredAt: string;
    }): Promise<{ recordHash: string }> {
      const record = registrationRecord(input.request, new Date(input.registeredAt));
      const recordHash = registrationRecordHash(record);
      const now = new Date();
      await patches.updateOne(
        { _id: record.uid },
        {
          $setOnInsert: {
            registrationId: input.registrationId,
            status: 'pending',
            requestHash: input.requestHash,
            idempotencyKey: input.idempotencyKey ?? null,
            record,
            recordHash,
            issuerSignature: null,
            anchor: null,
            owner: input.request.auth.owner,
            lastError: null,
            createdAt: now,
            updatedAt: now,
          },
        },
        { upsert: true },
      );
      const patch = await stored(record.uid);
      if (patch.registrationId !== input.registrationId) {
        throw ApplicationFailure.nonRetryable(`${record.uid} belongs to ${patch.registrationId}`, 'RegistrationConflict');
      }
      deps.logger.info('registration persisted', { uid: record.uid });
      return { recordHash: patch.recordHash };
    },

    /** The issuer's signature over sha256(canonical record), through the KMS; stored, so a retry signs nothing twice. */
    async signRegistrationRecord(input: { uid: string }): Promise<{ signatureDerHex: string; pubKeyHex: string }> {
      const patch = await stored(input.uid);
      if (patch.issuerSignature) return patch.issuerSignature;
      let signature;
      try {
        [signature] = await deps.kms.sign([{ keyIdentifier: deps.issuerKeyIdentifier, digestHex: patch.recordHash }]);
      } catch (err) {
        if (isKmsError(err) && !err.retryable) throw ApplicationFailure.nonRetryable(err.message, 'KmsRejected', { kind: err.kind });
        throw err;
      }
      const issuerSignature = { ...signature, keyIdentifier: deps.issuerKeyIdentifier };
      await patches.updateOne({ _id: input.uid, issuerSignature: null }, { $set: { issuerSignature, updatedAt: new Date() } });
      return (await stored(input.uid)).issuerSignature!;
    },

    /**
     * Reserves one pool output for the anchor and returns the transaction plan: the anchor output committing to a
     * one-leaf tree (single mode) and change back to the pool.
     */
    async planSingleAnchor(input: { uid: string; owner: string; round: number; excludeUtxoIds?: string[] }): Promise<{
      plan: {
        inputs: SpendableOutput[];
        outputs: { kind: 'data'; pushes: number[][] }[];
        changeAddress: string;
        minChangeSats: number;
        feeRateSatPerKb: number;
      };
      proof: MerkleProof;
      change: { keyIdentifier: string; lockingScriptHex: string };
      minConfirmations: number;
      pollSeconds: number;
    }> {
      const patch = await stored(input.uid);
      const settings = await readPoolSettings(deps.mongo, deps.pool.defaults);
      const accounts = await resolvePoolAccounts(deps.pool, deps.kms, deps.network, false);
      const proof = merkleProofs([patch.recordHash])[0]!;
      const fee = p2pkhTransactionFee(1, 2, settings.feePerKb) + Math.ceil((ANCHOR_OUTPUT_EXTRA_BYTES * settings.feePerKb) / 1000);
      const chainHeight = (await deps.woc.getChainInfo()).blocks;
      const input0 = await reservations.reserve({
        owner: input.owner,
        slot: `anchor-input-${input.round}`,
        keyIdentifier: accounts.funding.keyIdentifier,
        lockingScriptHex: accounts.funding.lockingScriptHex,
        minSatoshis: fee + 1,
        minConfirmations: settings.minConfirmations,
        chainHeight,
        ...(input.excludeUtxoIds && input.excludeUtxoIds.length > 0 && { excludeUtxoIds: input.excludeUtxoIds }),
      });
      if (!input0) {
        deps.metrics?.poolOperationFailures.inc({ operation: 'registration', reason: 'insufficient_funds' });
        throw ApplicationFailure.nonRetryable(
          `insufficient funds: no confirmed pool output of at least ${fee + 1} sat to anchor ${input.uid}; top the pool up`,
          POOL_FAILURES.insufficientFunds,
          { needed: fee + 1 },
        );
      }
      recordAnchorPlanned(deps.metrics, { records: 1, feeSatoshis: fee });
      return {
        plan: {
          inputs: [
            {
              txid: input0.txid,
              vout: input0.vout,
              satoshis: input0.satoshis,
              lockingScriptHex: input0.lockingScriptHex,
              keyIdentifier: input0.keyIdentifier,
            },
          ],
          outputs: [{ kind: 'data', pushes: anchorPushes({ root: proof.root, count: 1 }) }],
          changeAddress: accounts.change.address,
          minChangeSats: minWorthwhileChange(settings.feePerKb),
          feeRateSatPerKb: settings.feePerKb,
        },
        proof,
        change: { keyIdentifier: accounts.change.keyIdentifier, lockingScriptHex: accounts.change.lockingScriptHex },
        minConfirmations: deps.anchorConfirmations,
        pollSeconds: settings.confirmationPollSeconds,
      };
    },

    async markRegistrationAnchoring(input: { uid: string; txid: string }): Promise<void> {
      await patches.updateOne(
        { _id: input.uid, status: { $in: ['pending', 'anchoring'] } },
        { $set: { status: 'anchoring', updatedAt: new Date() } },
      );
      deps.logger.onChain.info('registration anchoring', { uid: input.uid, txid: input.txid });
    },

    async markRegistrationAnchored(input: {
      uid: string;
      txid: string;
      vout: number;
      proof: MerkleProof;
      blockHeight: number | null;
    }): Promise<void> {
      const before = await patches.findById(input.uid, { status: 1, updatedAt: 1 }).lean();
      await patches.updateOne(
        { _id: input.uid },
        {
          $set: {
            status: 'anchored',
            anchor: { txid: input.txid, vout: input.vout, proof: input.proof, blockHeight: input.blockHeight },
            lastError: null,
            updatedAt: new Date(),
          },
        },
      );
      // Counted on the transition only: a retried activity finds the record anchored already.
      if (before && before.status !== 'anchored') {
        recordRegistrationOutcome(deps.metrics, 'anchored');
        // markRegistrationAnchoring stamped updatedAt right after the broadcast.
        if (before.status === 'anchoring') recordAnchorConfirmed(deps.metrics, before.updatedAt);
      }
      deps.logger.onChain.info('registration anchored', { uid: input.uid, txid: input.txid });
    },

    async markRegistrationFailed(input: { uid: string; reason: string }): Promise<void> {
      const before = await patches.findById(input.uid, { status: 1 }).lean();
      await patches.updateOne(
        { _id: input.uid, status: { $ne: 'anchored' } },
        { $set: { status: 'failed', lastError: input.reason, updatedAt: new Date() } },
      );
      // Counted on the transition only: a retried activity finds the record failed already.
      if (before && before.status !== 'anchored' && before.status !== 'failed') recordRegistrationOutcome(deps.metrics, 'failed');
    },

    /** Block height of an anchor tx, for the stored proof. */
    async anchorBlockHeight(txid: string): Promise<number | null> {
      return (await deps.woc.getTx(txid))?.blockHeight ?? null;
    },
  };
}

export type RegistrationActivities = ReturnType<typeof createRegistrationActivities>;

import { ApplicationFailure } from '@temporalio/activity';
import type { MerkleProof } from '../../src/anchoring/merkle';
import { recordAnchorConfirmed, recordRegistrationOutcome, type Metrics } from '../../src/metrics';
import { registrationWorkflowId } from '../../src/registration/ids';
import { patchModel, type PatchDocument } from '../../src/registration/models';
import { registrationRecord, registrationRecordHash, type RegistrationRequest } from '../../src/registration/record';
import type { Keyring } from '../../src/rotation/keyring';
import { signAsIssuer } from '../shared/issuerSignature';
import type { PoolSpendingDeps } from '../shared/deps';

export interface RegistrationActivityDeps extends PoolSpendingDeps {
  issuerKeyIdentifier: string;
  metrics?: Metrics;
  /** Key settings: the active issuer and funding keys after a rotation (the environment's before). */
  keys?: Keyring;
}

/** Activities of the registration workflow; each is idempotent (keyed by uid, or answered from what is stored). */
export function createRegistrationActivities(deps: RegistrationActivityDeps) {
  const patches = patchModel(deps.mongo);

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
            head: null,
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
      const issuerKeyIdentifier = deps.keys ? await deps.keys.activeKeyId('issuer') : deps.issuerKeyIdentifier;
      const issuerSignature = await signAsIssuer(deps.kms, issuerKeyIdentifier, patch.recordHash);
      await patches.updateOne({ _id: input.uid, issuerSignature: null }, { $set: { issuerSignature, updatedAt: new Date() } });
      return (await stored(input.uid)).issuerSignature!;
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
      const patch = await stored(input.uid);
      await patches.updateOne(
        { _id: input.uid },
        {
          $set: {
            status: 'anchored',
            anchor: { txid: input.txid, vout: input.vout, proof: input.proof, blockHeight: input.blockHeight },
            // The head starts at the registration; a retry after a transfer moved it leaves it alone.
            ...(!patch.head && { head: { txid: input.txid, recordHash: patch.recordHash, seq: 0 } }),
            lastError: null,
            updatedAt: new Date(),
          },
        },
      );
      // Counted on the transition only: a retried activity finds the record anchored already.
      if (patch.status !== 'anchored') {
        recordRegistrationOutcome(deps.metrics, 'anchored');
        // markRegistrationAnchoring stamped updatedAt right after the broadcast.
        if (patch.status === 'anchoring') recordAnchorConfirmed(deps.metrics, patch.updatedAt);
      }
      deps.logger.onChain.info('registration anchored', { uid: input.uid, txid: input.txid });
    },

    async markRegistrationFailed(input: { uid: string; reason: string }): Promise<void> {
      const before = await patches.findById(input.uid, { status: 1, registrationId: 1 }).lean();
      // A registration that lost its uid to another (a bulk batch) must not mark the winner's record failed.
      const registrationId = registrationWorkflowId(input.uid);
      if (before && before.registrationId !== registrationId) return;
      await patches.updateOne(
        { _id: input.uid, registrationId, status: { $ne: 'anchored' } },
        { $set: { status: 'failed', lastError: input.reason, updatedAt: new Date() } },
      );
      // Counted on the transition only: a retried activity finds the record failed already.
      if (before && before.status !== 'anchored' && before.status !== 'failed') recordRegistrationOutcome(deps.metrics, 'failed');
    },
  };
}

export type RegistrationActivities = ReturnType<typeof createRegistrationActivities>;

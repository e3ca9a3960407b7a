import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { AnyBulkWriteOperation } from 'mongoose';
import type { AppConfig } from '../../src/config';
import { bulkWriteInChunks } from '../../src/db/bulkWrites';
import { sendToAnchorBatcher } from '../anchoring/anchoringActivities';
import type { MerkleProof } from '../../src/anchoring/merkle';
import { recordAnchorConfirmed, recordRegistrationOutcome, type Metrics } from '../../src/metrics';
import { registrationWorkflowId } from '../../src/registration/ids';
import { patchModel, type PatchDocument } from '../../src/registration/models';
import { registrationRecord, registrationRecordHash, type RegistrationRequest, type TagBinding } from '../../src/registration/record';
import type { Keyring } from '../../src/rotation/keyring';
import { signAsIssuer } from '../shared/issuerSignature';
import { trackAnchorTx } from '../../src/chainFollower/localChain';
import type { PoolSpendingDeps } from '../shared/deps';
import { bindTags } from '../../src/tags/taps';
import { DEFAULT_TENANT_ID, type Actor } from '../../src/tenancy/apiKeys';
import type { WebhookConfig } from '../../src/config';
import { emitFromActivity, type EmittedEvent } from '../../src/webhooks/launch';

export interface RegistrationActivityDeps extends PoolSpendingDeps {
  anchoring: AppConfig['anchoring'];
  temporal?: Client;
  issuerKeyIdentifier: string;
  metrics?: Metrics;
  /** Key settings: the active issuer and funding keys after a rotation (the environment's before). */
  keys?: Keyring;
  /** KMS name of the NFC tags' master key: a tag is bound under its current version. */
  tagKeyIdentifier?: string;
  /** Webhook retry settings for the events these activities emit; none emitted without them. */
  webhooks?: Pick<WebhookConfig, 'retry'>;
}

/** The KMS master key a tag's keys come from; the default matches TAG_KEY_IDENTIFIER's. */
export const DEFAULT_TAG_KEY_IDENTIFIER = 'ntag424-sdm';

/** Activities of the registration workflow; each is idempotent (keyed by uid, or answered from what is stored). */
export function createRegistrationActivities(deps: RegistrationActivityDeps) {
  const patches = patchModel(deps.mongo);

  async function stored(uid: string): Promise<PatchDocument> {
    const patch = await patches.findById(uid).lean();
    if (!patch) throw ApplicationFailure.nonRetryable(`no registration record for ${uid}`, 'RegistrationMissing');
    return patch;
  }

  /** The pending record, written once; one round trip, as the stored document (a retry's is the first write's). */
  async function persist(input: PendingRegistration): Promise<PatchDocument> {
    const record = registrationRecord(input.request, new Date(input.registeredAt), await tagBindingOf(input.request));
    const recordHash = registrationRecordHash(record);
    const now = new Date();
    const patch = await patches
      .findOneAndUpdate(
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
            tenantId: input.actor?.tenantId ?? DEFAULT_TENANT_ID,
            createdBy: input.actor?.keyId ?? null,
            audit: input.actor ? [{ at: now, action: 'registered', keyId: input.actor.keyId }] : [],
            createdAt: now,
            updatedAt: now,
          },
        },
        { upsert: true, returnDocument: 'after' },
      )
      .lean();
    if (!patch) throw ApplicationFailure.nonRetryable(`no registration record for ${record.uid}`, 'RegistrationMissing');
    if (patch.registrationId !== input.registrationId) {
      throw ApplicationFailure.nonRetryable(`${record.uid} belongs to ${patch.registrationId}`, 'RegistrationConflict');
    }
    deps.logger.info('registration persisted', { uid: record.uid });
    return patch;
  }

  /**
   * Binds the request's tag to its patch under the master's current version; a retry finds the binding and its
   * version, so the record is the same whatever rotated meanwhile. A tag held by another patch fails the run.
   */
  async function tagBindingOf(request: RegistrationRequest): Promise<TagBinding | undefined> {
    if (!request.tag) return undefined;
    const keyIdentifier = deps.tagKeyIdentifier ?? DEFAULT_TAG_KEY_IDENTIFIER;
    const { version } = await deps.kms.tagKeyVersion(keyIdentifier);
    const patchUid = request.product.uid_tag_id;
    const { bound, conflicts } = await bindTags(deps.mongo, [{ tagUid: request.tag.uid, patchUid, keyIdentifier, keyVersion: version }]);
    if (conflicts.length > 0) {
      throw ApplicationFailure.nonRetryable(`tag ${request.tag.uid} is bound to another patch`, 'TagAlreadyBound');
    }
    return { type: 'ntag424', uid: request.tag.uid, keyIdentifier: bound[0]!.keyIdentifier, keyVersion: bound[0]!.keyVersion };
  }

  /** The record's issuer signature: the stored one, or a new one stored only if none was meanwhile (a retry). */
  async function sign(patch: PatchDocument): Promise<{ signatureDerHex: string; pubKeyHex: string }> {
    if (patch.issuerSignature) return patch.issuerSignature;
    const issuerKeyIdentifier = deps.keys ? await deps.keys.activeKeyId('issuer') : deps.issuerKeyIdentifier;
    const issuerSignature = await signAsIssuer(deps.kms, issuerKeyIdentifier, patch.recordHash);
    const written = await patches.updateOne(
      { _id: patch._id, issuerSignature: null },
      { $set: { issuerSignature, updatedAt: new Date() } },
    );
    return written.modifiedCount === 1 ? issuerSignature : (await stored(patch._id)).issuerSignature!;
  }

  return {
    /** Writes the pending record once (a retry finds it) and returns its canonical hash. */
    async persistPendingRegistration(input: PendingRegistration): Promise<{ recordHash: string }> {
      return { recordHash: (await persist(input)).recordHash };
    },

    /** The issuer's signature over sha256(canonical record), through the KMS; stored, so a retry signs nothing twice. */
    async signRegistrationRecord(input: { uid: string }): Promise<{ signatureDerHex: string; pubKeyHex: string }> {
      return sign(await stored(input.uid));
    },

    /**
     * The registration's whole hot path in one activity: the pending record, its issuer signature and its request
     * to the anchor batcher, which settles it (writes its anchored state and signals the workflow). Each step finds
     * what a retry did before it.
     */
    async prepareRegistration(input: PendingRegistration): Promise<{ recordHash: string; confirmations: number }> {
      const patch = await persist(input);
      const { recordHash } = patch;
      const uid = input.request.product.uid_tag_id;
      await sign(patch);
      await sendToAnchorBatcher(deps, {
        key: `registration:${uid}`,
        recordHash,
        subjectWorkflowId: input.registrationId,
        settle: { kind: 'registration', uid },
      });
      // The confirmations its batch waits for: the workflow waits that long before asking where the record stands.
      return { recordHash, confirmations: deps.anchoring.confirmations };
    },

    /** A batch's settled registrations are in the mempool: each keeps its txid and proof (bulk, one statement each). */
    async markRegistrationsAnchoring(input: { txid: string; vout: number; records: { uid: string; proof: MerkleProof }[] }): Promise<void> {
      const at = new Date();
      await bulkWriteInChunks(
        patches,
        input.records.map(({ uid, proof }): AnyBulkWriteOperation<PatchDocument> => ({
          updateOne: {
            filter: { _id: uid, status: { $in: ['pending', 'anchoring'] } },
            update: {
              $set: { status: 'anchoring', anchor: { txid: input.txid, vout: input.vout, proof, blockHeight: null }, updatedAt: at },
            },
          },
        })),
      );
      deps.logger.onChain.info('registrations anchoring', { txid: input.txid, records: input.records.length });
    },

    /**
     * A batch's settled registrations have their confirmations: anchored, each head starting at its registration.
     * Only records still anchoring in this transaction move, so a retry (or a record anchored twice) changes nothing.
     */
    async markRegistrationsAnchored(input: {
      txid: string;
      blockHeight: number | null;
      broadcastAt: string;
      records: { uid: string; recordHash: string }[];
    }): Promise<{ anchored: number }> {
      const at = new Date();
      await trackAnchorTx(deps.mongo, deps.network, input.txid);
      const totals = await bulkWriteInChunks(
        patches,
        input.records.map(({ uid, recordHash }): AnyBulkWriteOperation<PatchDocument> => ({
          updateOne: {
            filter: { _id: uid, status: 'anchoring', 'anchor.txid': input.txid },
            update: {
              $set: {
                status: 'anchored',
                'anchor.blockHeight': input.blockHeight,
                head: { txid: input.txid, recordHash, seq: 0 },
                lastError: null,
                updatedAt: at,
              },
            },
          },
        })),
      );
      recordRegistrationOutcome(deps.metrics, 'anchored', totals.modified);
      const broadcastAt = new Date(input.broadcastAt);
      for (let i = 0; i < totals.modified; i++) recordAnchorConfirmed(deps.metrics, broadcastAt, at);
      deps.logger.onChain.info('registrations anchored', { txid: input.txid, records: totals.modified });
      // Every record anchored in this transaction, read back: a retry after the write emits the same events.
      await emitFromActivity(deps, 'registration.anchored', async () => {
        const events: EmittedEvent[] = [];
        for (const { uid } of input.records) {
          const patch = await patches.findById(uid, { tenantId: 1, status: 1, anchor: 1 }).lean();
          if (patch?.status === 'anchored' && patch.anchor?.txid === input.txid)
            events.push(anchoredEvent(uid, input.txid, patch.tenantId));
        }
        return events;
      });
      return { anchored: totals.modified };
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
      await trackAnchorTx(deps.mongo, deps.network, input.txid);
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
      await emitFromActivity(deps, 'registration.anchored', () => [anchoredEvent(input.uid, input.txid, patch.tenantId)]);
    },

    async markRegistrationFailed(input: { uid: string; reason: string }): Promise<void> {
      const before = await patches.findById(input.uid, { status: 1, registrationId: 1, tenantId: 1 }).lean();
      // A registration that lost its uid to another (a bulk batch) must not mark the winner's record failed.
      const registrationId = registrationWorkflowId(input.uid);
      if (before && before.registrationId !== registrationId) return;
      await patches.updateOne(
        { _id: input.uid, registrationId, status: { $ne: 'anchored' } },
        { $set: { status: 'failed', lastError: input.reason, updatedAt: new Date() } },
      );
      // Counted on the transition only: a retried activity finds the record failed already.
      if (before && before.status !== 'anchored' && before.status !== 'failed') recordRegistrationOutcome(deps.metrics, 'failed');
      if (before && before.status !== 'anchored') {
        const tenantId = before.tenantId ?? DEFAULT_TENANT_ID;
        await emitFromActivity(deps, 'registration.failed', () => [
          { tenantId, type: 'registration.failed', subject: input.uid, data: { uid: input.uid, status: 'failed' } },
        ]);
      }
    },
  };
}

/** The event for a registration that reached its confirmations: uid and txid only. */
function anchoredEvent(uid: string, txid: string, tenantId: string | null | undefined): EmittedEvent {
  return { tenantId: tenantId ?? DEFAULT_TENANT_ID, type: 'registration.anchored', subject: uid, data: { uid, txid, status: 'anchored' } };
}

export interface PendingRegistration {
  registrationId: string;
  request: RegistrationRequest;
  requestHash: string;
  idempotencyKey?: string;
  actor?: Actor;
  registeredAt: string;
}

export type RegistrationActivities = ReturnType<typeof createRegistrationActivities>;

import { ApplicationFailure } from '@temporalio/activity';
import type { MerkleProof } from '../../src/anchoring/merkle';
import { merkleRoot } from '../../src/anchoring/merkle';
import { treeHead, treeHeadHash } from '../../src/anchoring/treeHead';
import { batchChunkId, CHUNK_SIZE } from '../../src/bulkRegistration/ids';
import {
  patchBatchChunkModel,
  patchBatchItemModel,
  patchBatchModel,
  type ItemError,
  type PatchBatchChunkDocument,
  type PatchBatchDocument,
} from '../../src/bulkRegistration/models';
import { bulkWriteInChunks, insertManyIgnoringDuplicates } from '../../src/db/bulkWrites';
import type { KmsClient } from '../../src/kms/client';
import type { Logger } from '../../src/logging/logger';
import { recordRegistrationOutcome, type Metrics } from '../../src/metrics';
import { patchModel, type PatchDocument } from '../../src/registration/models';
import { registrationRecord, registrationRecordHash, type RegistrationRequest, type TagBinding } from '../../src/registration/record';
import { bindTags } from '../../src/tags/taps';
import { DEFAULT_TAG_KEY_IDENTIFIER } from '../registration/registrationActivities';
import type { Keyring } from '../../src/rotation/keyring';
import type { SealedChunk } from '../../workflows/bulkRegistration/shared';
import type { Connection } from 'mongoose';
import { withHeartbeats } from '../shared/heartbeat';
import type { Network } from '../../src/chain/addresses';
import { trackAnchorTx } from '../../src/chainFollower/localChain';
import { DEFAULT_TENANT_ID } from '../../src/tenancy/apiKeys';
import { signDigestsAsIssuer } from '../shared/issuerSignature';

import type { Client } from '@temporalio/client';
import type { WebhookConfig } from '../../src/config';
import { emitFromActivity } from '../../src/webhooks/launch';
export interface BulkRegistrationActivityDeps {
  mongo: Connection;
  kms: KmsClient;
  logger: Logger;
  issuerKeyIdentifier: string;
  metrics?: Metrics;
  /** Key settings: the active issuer key after a rotation (the environment's before). */
  keys?: Keyring;
  /** The chain follower is told of each anchor tx, to prove it for verification. */
  network?: Network;
  /** KMS name of the NFC tags' master key. */
  tagKeyIdentifier?: string; /** Emits webhook events (to the tenant's subscribed endpoints) when both are set. */
  temporal?: Client;
  webhooks?: Pick<WebhookConfig, 'retry'>;
}

/**
 * Activities of the bulk-registration workflow. Each reads the batch from MongoDB and is idempotent: a step's
 * outcome is stored under a key derived from the batch (chunk documents, patch ids), so a retry or a resumed run
 * finds it and repeats nothing: no second signature, no second record.
 */
export function createBulkRegistrationActivities(deps: BulkRegistrationActivityDeps) {
  const batches = patchBatchModel(deps.mongo);
  const items = patchBatchItemModel(deps.mongo);
  const chunks = patchBatchChunkModel(deps.mongo);
  const patches = patchModel(deps.mongo);

  async function storedBatch(batchId: string): Promise<PatchBatchDocument> {
    const batch = await batches.findById(batchId).lean();
    if (!batch) throw ApplicationFailure.nonRetryable(`no batch ${batchId}`, 'BatchMissing');
    return batch;
  }

  /** Chunk summaries without their record hashes, in chunk order. */
  async function chunkSummaries(batchId: string): Promise<Omit<PatchBatchChunkDocument, 'recordHashes'>[]> {
    const found = await chunks.find({ batchId }, { recordHashes: 0 }).lean();
    return found.sort((a, b) => a.chunk - b.chunk);
  }

  /**
   * Binds the chunk's tags under the master's current version (one KMS call per chunk); a retry finds its bindings
   * and their versions. An item whose tag another patch holds becomes a duplicate.
   */
  async function bindChunkTags(entries: { item: { _id: string; uid: string | null }; request: RegistrationRequest }[]) {
    const tagBindings = new Map<string, TagBinding>();
    const tagConflicts = new Map<string, string>();
    const tagged = entries.filter((e) => e.request.tag);
    if (tagged.length === 0) return { tagBindings, tagConflicts };
    const keyIdentifier = deps.tagKeyIdentifier ?? DEFAULT_TAG_KEY_IDENTIFIER;
    const { version } = await deps.kms.tagKeyVersion(keyIdentifier);
    const { bound, conflicts } = await bindTags(
      deps.mongo,
      tagged.map((e) => ({ tagUid: e.request.tag!.uid, patchUid: e.item.uid!, keyIdentifier, keyVersion: version })),
    );
    const byTag = new Map(bound.map((b) => [b._id, b]));
    const heldBy = new Map(conflicts.map((c) => [c.tagUid, c.heldBy]));
    for (const { item, request } of tagged) {
      const tagUid = request.tag!.uid;
      const binding = byTag.get(tagUid);
      if (binding)
        tagBindings.set(item._id, { type: 'ntag424', uid: tagUid, keyIdentifier: binding.keyIdentifier, keyVersion: binding.keyVersion });
      else tagConflicts.set(item._id, heldBy.get(tagUid) ?? 'another patch');
    }
    return { tagBindings, tagConflicts };
  }

  return {
    /** The batch's chunk count; marks it registering (once its items are all stored). */
    async openBatch(input: { batchId: string }): Promise<{ chunkCount: number; itemCount: number }> {
      const batch = await storedBatch(input.batchId);
      if (batch.state === 'receiving')
        throw ApplicationFailure.retryable(`batch ${input.batchId} is still being received`, 'BatchReceiving');
      await batches.updateOne({ _id: input.batchId, state: 'accepted' }, { $set: { state: 'registering', updatedAt: new Date() } });
      return { chunkCount: batch.chunkCount, itemCount: batch.itemCount };
    },

    /**
     * Seals one chunk: builds each item's canonical record (registered at the batch's time), claims each uid by
     * inserting its patch record (a uid held by any other registration makes the item a duplicate), and stores the
     * tree head over the registered records' hashes. The chunk document is written last: its presence means sealed.
     */
    async sealChunk(input: { batchId: string; chunk: number }): Promise<SealedChunk> {
      const chunkId = batchChunkId(input.batchId, input.chunk);
      const done = await chunks.findById(chunkId, { recordHashes: 0 }).lean();
      if (done) return { chunk: input.chunk, size: done.size, duplicates: done.duplicates, treeHeadHash: done.treeHeadHash };
      return withHeartbeats({ step: 'sealing', chunk: input.chunk }, async () => {
        const batch = await storedBatch(input.batchId);
        const members = (
          await items
            .find({ batchId: input.batchId, chunk: input.chunk }, { unlockable: 0, error: 0 })
            // One round trip for the whole chunk rather than the driver's default first batch of 101.
            .batchSize(CHUNK_SIZE)
            .lean()
        ).sort((a, b) => a.index - b.index);
        const now = new Date();
        const requests = new Map(members.map((item) => [item._id, JSON.parse(item.requestJson!) as RegistrationRequest]));
        const { tagBindings, tagConflicts } = await bindChunkTags(members.map((item) => ({ item, request: requests.get(item._id)! })));
        const candidates = members
          .filter((item) => !tagConflicts.has(item._id))
          .map((item) => {
            const request = requests.get(item._id)!;
            const record = registrationRecord(request, batch.createdAt, tagBindings.get(item._id));
            const patch: PatchDocument = {
              _id: item.uid!,
              registrationId: item._id,
              status: 'pending',
              requestHash: item.requestHash!,
              idempotencyKey: null,
              record,
              recordHash: registrationRecordHash(record),
              issuerSignature: null,
              anchor: null,
              owner: request.auth.owner,
              head: null,
              batchId: input.batchId,
              batchChunk: input.chunk,
              lastError: null,
              // The batch's tenant and key own its patches; a batch from before tenancy has neither.
              tenantId: batch.tenantId ?? DEFAULT_TENANT_ID,
              createdBy: batch.createdBy ?? null,
              ...(batch.createdBy && { audit: [{ at: now, action: 'registered', keyId: batch.createdBy }] }),
              createdAt: now,
              updatedAt: now,
            };
            return { item, patch };
          });
        const { duplicateIndexes } = await insertManyIgnoringDuplicates(
          patches,
          candidates.map((c) => c.patch),
        );
        // Ours are the records this chunk inserted, now or on an earlier attempt; any other holder makes a duplicate.
        const ours =
          duplicateIndexes.length === 0
            ? new Set(candidates.map((c) => c.item._id))
            : new Set(
                (await patches.find({ batchId: input.batchId, batchChunk: input.chunk }, { registrationId: 1 }).lean()).map(
                  (p) => p.registrationId,
                ),
              );
        const registered = candidates.filter((c) => ours.has(c.item._id));
        const duplicates = candidates.filter((c) => !ours.has(c.item._id));
        const duplicateUpdates = [];
        for (const [itemId, heldBy] of tagConflicts) {
          const error: ItemError = { code: 'DUPLICATE', message: `Its tag is already bound to ${heldBy}.` };
          duplicateUpdates.push({ updateOne: { filter: { _id: itemId }, update: { $set: { state: 'duplicate' as const, error } } } });
        }
        for (const { item } of duplicates) {
          const holder = await patches.findById(item.uid!, { registrationId: 1 }).lean();
          const error: ItemError = {
            code: 'DUPLICATE',
            message: `${item.uid!} is already registered.`,
            ...(holder && { registrationId: holder.registrationId }),
          };
          duplicateUpdates.push({ updateOne: { filter: { _id: item._id }, update: { $set: { state: 'duplicate' as const, error } } } });
        }
        // Only duplicates are marked: an `accepted` item of a sealed chunk is registered (src/bulkRegistration/view.ts),
        // which spares rewriting a thousand items per chunk.
        if (duplicateUpdates.length > 0) await bulkWriteInChunks(items, duplicateUpdates);

        const recordHashes = registered.map((c) => c.patch.recordHash);
        const head = recordHashes.length > 0 ? treeHead(merkleRoot(recordHashes), recordHashes.length, batch.createdAt) : null;
        const sealed: PatchBatchChunkDocument = {
          _id: chunkId,
          batchId: input.batchId,
          chunk: input.chunk,
          state: 'sealed',
          size: recordHashes.length,
          duplicates: duplicates.length + tagConflicts.size,
          recordHashes,
          treeHead: head,
          treeHeadHash: head && treeHeadHash(head),
          issuerSignature: null,
          anchor: null,
          createdAt: now,
          updatedAt: now,
        };
        await insertManyIgnoringDuplicates(chunks, [sealed]);
        deps.logger.info('bulk chunk sealed', {
          batchId: input.batchId,
          chunk: input.chunk,
          registered: sealed.size,
          duplicates: sealed.duplicates,
        });
        return { chunk: input.chunk, size: sealed.size, duplicates: sealed.duplicates, treeHeadHash: sealed.treeHeadHash };
      });
    },

    /**
     * Signs every sealed chunk's tree head that is not signed yet, in one KMS request, and returns the leaves of
     * the anchor tree: the signed tree heads' hashes in chunk order (chunks that registered nothing have none).
     */
    async signTreeHeads(input: { batchId: string }): Promise<{ leaves: { chunk: number; treeHeadHash: string }[] }> {
      const all = await chunkSummaries(input.batchId);
      // Every chunk is sealed by the time its tree heads are signed.
      await batches.updateOne(
        { _id: input.batchId, 'timings.sealedAt': { $exists: false } },
        {
          $set: {
            'timings.sealedAt': all.reduce((last, c) => (c.createdAt > last ? c.createdAt : last), new Date(0)),
            updatedAt: new Date(),
          },
        },
      );
      const sealed = all.filter((c) => c.treeHeadHash !== null);
      const unsigned = sealed.filter((c) => c.issuerSignature === null);
      if (unsigned.length > 0) {
        const keyIdentifier = deps.keys ? await deps.keys.activeKeyId('issuer') : deps.issuerKeyIdentifier;
        const signatures = await signDigestsAsIssuer(
          deps.kms,
          keyIdentifier,
          unsigned.map((c) => c.treeHeadHash!),
        );
        const now = new Date();
        for (const [i, chunk] of unsigned.entries()) {
          await chunks.updateOne(
            { _id: chunk._id, issuerSignature: null },
            { $set: { issuerSignature: signatures[i], state: 'signed', updatedAt: now } },
          );
        }
        await batches.updateOne({ _id: input.batchId }, { $set: { 'timings.signedAt': now, updatedAt: now } });
      }
      return { leaves: sealed.map((c) => ({ chunk: c.chunk, treeHeadHash: c.treeHeadHash! })) };
    },

    /** The anchor transaction is in the mempool: each chunk gets its tree head's proof in the anchor tree. */
    async markBatchBroadcast(input: { batchId: string; txid: string; anchors: { chunk: number; proof: MerkleProof }[] }): Promise<void> {
      const now = new Date();
      for (const anchor of input.anchors) {
        await chunks.updateOne(
          { _id: batchChunkId(input.batchId, anchor.chunk), state: { $in: ['sealed', 'signed'] } },
          { $set: { state: 'anchoring', anchor: { txid: input.txid, vout: 0, proof: anchor.proof, blockHeight: null }, updatedAt: now } },
        );
      }
      await batches.updateOne(
        { _id: input.batchId, state: 'registering' },
        { $set: { state: 'anchoring', txid: input.txid, 'timings.broadcastAt': now, updatedAt: now } },
      );
      deps.logger.onChain.info('bulk batch anchoring', { batchId: input.batchId, txid: input.txid });
    },

    /**
     * The batch is done: with an anchor (its confirmations reached), every record it registered becomes anchored
     * in one update per batch; without one, nothing was left to anchor (every item was invalid or a duplicate).
     */
    async completeBatch(input: { batchId: string; anchor: { txid: string; blockHeight: number | null } | null }): Promise<void> {
      const now = new Date();
      const batch = await storedBatch(input.batchId);
      if (input.anchor) {
        const { txid, blockHeight } = input.anchor;
        if (deps.network) await trackAnchorTx(deps.mongo, deps.network, txid);
        await chunks.updateMany(
          { batchId: input.batchId, state: 'anchoring' },
          { $set: { state: 'anchored', 'anchor.blockHeight': blockHeight, updatedAt: now } },
        );
        const updated = await patches.updateMany(
          { batchId: input.batchId, status: 'pending' },
          { $set: { status: 'anchored', anchor: { txid, vout: 0, proof: null, blockHeight }, updatedAt: now } },
        );
        // Counted on the transition only: a retry finds the records anchored already.
        recordRegistrationOutcome(deps.metrics, 'anchored', updated.modifiedCount);
      }
      if (batch.state !== 'completed') {
        await batches.updateOne({ _id: input.batchId }, { $set: { state: 'completed', 'timings.completedAt': now, updatedAt: now } });
      }
      deps.logger.onChain.info('bulk batch completed', { batchId: input.batchId, ...(input.anchor && { txid: input.anchor.txid }) });
      await emitFromActivity(deps, 'batch.completed', () => [
        {
          tenantId: batch.tenantId ?? DEFAULT_TENANT_ID,
          type: 'batch.completed',
          subject: input.batchId,
          data: { batchId: input.batchId, status: 'completed', txid: input.anchor?.txid ?? null },
        },
      ]);
    },

    /** The batch could not be anchored: its pending records fail with the reason, and the batch says why. */
    async markBatchFailed(input: { batchId: string; reason: string }): Promise<void> {
      const now = new Date();
      const updated = await patches.updateMany(
        { batchId: input.batchId, status: 'pending' },
        { $set: { status: 'failed', lastError: input.reason, updatedAt: now } },
      );
      recordRegistrationOutcome(deps.metrics, 'failed', updated.modifiedCount);
      await chunks.updateMany({ batchId: input.batchId, state: { $ne: 'anchored' } }, { $set: { state: 'failed', updatedAt: now } });
      await batches.updateOne(
        { _id: input.batchId, state: { $ne: 'completed' } },
        { $set: { state: 'failed', lastError: input.reason, 'timings.failedAt': now, updatedAt: now } },
      );
    },
  };
}

export type BulkRegistrationActivities = ReturnType<typeof createBulkRegistrationActivities>;

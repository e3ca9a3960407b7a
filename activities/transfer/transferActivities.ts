import { ApplicationFailure } from '@temporalio/activity';
import type { Connection } from 'mongoose';
import type { MerkleProof } from '../../src/anchoring/merkle';
import type { KmsClient } from '../../src/kms/client';
import type { Logger } from '../../src/logging/logger';
import { recordTransferOutcome, type Metrics } from '../../src/metrics';
import { currentHead, patchModel } from '../../src/registration/models';
import { transferModel, type TransferDocument } from '../../src/transfer/models';
import { transferRecord, transferRecordHash, type TransferRequest } from '../../src/transfer/record';
import type { Keyring } from '../../src/rotation/keyring';
import type { Network } from '../../src/chain/addresses';
import { trackAnchorTx } from '../../src/chainFollower/localChain';
import { signAsIssuer } from '../shared/issuerSignature';
import type { Redis } from 'ioredis';
import { announceVerdictChange } from '../../src/registration/verdictChanges';

import type { Client } from '@temporalio/client';
import type { WebhookConfig } from '../../src/config';
import { emitFromActivity } from '../../src/webhooks/launch';
import { DEFAULT_TENANT_ID } from '../../src/tenancy/apiKeys';
export interface TransferActivityDeps {
  mongo: Connection;
  /** Where API processes are told that a patch's verification answer changed (a pending or anchored transfer). */
  redis?: Pick<Redis, 'publish'>;
  kms: KmsClient;
  logger: Logger;
  issuerKeyIdentifier: string;
  /** Key settings: the active issuer key after a rotation (the environment's before). */
  keys?: Keyring;
  metrics?: Metrics;
  /** The chain follower is told of each anchor tx, to prove it for verification. */
  network?: Network; /** Emits webhook events (to the tenant's subscribed endpoints) when both are set. */
  temporal?: Client;
  webhooks?: Pick<WebhookConfig, 'retry'>;
}

/** Failure types of the transfer activities: the patch moved on, or is not there to transfer. */
export const TRANSFER_FAILURES = { staleHead: 'StaleHead', patchMissing: 'PatchMissing' } as const;

/** Activities of the transfer workflow; each is idempotent (keyed by the transfer id, or answered from what is stored). */
export function createTransferActivities(deps: TransferActivityDeps) {
  const transfers = transferModel(deps.mongo);
  const patches = patchModel(deps.mongo);

  async function stored(transferId: string): Promise<TransferDocument> {
    const transfer = await transfers.findById(transferId).lean();
    if (!transfer) throw ApplicationFailure.nonRetryable(`no transfer record ${transferId}`, TRANSFER_FAILURES.patchMissing);
    return transfer;
  }

  return {
    /**
     * Writes the pending transfer record once, linked to the head it transfers (a retry finds it). Fails for good
     * when the head moved since the owner signed.
     */
    async persistPendingTransfer(input: { transferId: string; request: TransferRequest; startedAt: string }): Promise<{
      recordHash: string;
      seq: number;
      from: string;
    }> {
      const existing = await transfers.findById(input.transferId).lean();
      if (existing) return { recordHash: existing.recordHash, seq: existing.seq, from: String(existing.record.from) };
      const patch = await patches.findById(input.request.uid).lean();
      const head = patch && currentHead(patch);
      if (!patch || patch.status !== 'anchored' || !head) {
        throw ApplicationFailure.nonRetryable(`${input.request.uid} has no anchored head to transfer`, TRANSFER_FAILURES.patchMissing);
      }
      if (head.txid !== input.request.headTxid) {
        throw ApplicationFailure.nonRetryable(
          `the head of ${input.request.uid} moved to ${head.txid}; the owner signed for ${input.request.headTxid}`,
          TRANSFER_FAILURES.staleHead,
        );
      }
      const record = transferRecord({
        request: input.request,
        seq: head.seq + 1,
        previousRecordHash: head.recordHash,
        from: patch.owner,
        transferredAt: new Date(input.startedAt),
      });
      const recordHash = transferRecordHash(record);
      const now = new Date();
      await transfers.updateOne(
        { _id: input.transferId },
        {
          $setOnInsert: {
            uid: record.uid,
            seq: record.seq,
            status: 'pending',
            record,
            recordHash,
            issuerSignature: null,
            anchor: null,
            lastError: null,
            createdAt: now,
            updatedAt: now,
          },
        },
        { upsert: true },
      );
      const transfer = await stored(input.transferId);
      await announceVerdictChange(deps.redis, [record.uid], deps.logger);
      deps.logger.info('transfer persisted', { uid: record.uid, seq: record.seq });
      return { recordHash: transfer.recordHash, seq: transfer.seq, from: String(transfer.record.from) };
    },

    /** The issuer's signature over the transfer record's digest; stored, so a retry signs nothing twice. */
    async signTransferRecord(input: { transferId: string }): Promise<void> {
      const transfer = await stored(input.transferId);
      if (transfer.issuerSignature) return;
      const issuerKeyIdentifier = deps.keys ? await deps.keys.activeKeyId('issuer') : deps.issuerKeyIdentifier;
      const issuerSignature = await signAsIssuer(deps.kms, issuerKeyIdentifier, transfer.recordHash);
      await transfers.updateOne({ _id: input.transferId, issuerSignature: null }, { $set: { issuerSignature, updatedAt: new Date() } });
    },

    async markTransferAnchoring(input: { transferId: string; txid: string }): Promise<void> {
      await transfers.updateOne(
        { _id: input.transferId, status: { $in: ['pending', 'anchoring'] } },
        { $set: { status: 'anchoring', updatedAt: new Date() } },
      );
      deps.logger.onChain.info('transfer anchoring', { transferId: input.transferId, txid: input.txid });
    },

    /**
     * Marks the transfer anchored and moves the patch head to it, only from the head it was signed for: a retry
     * finds the head already moved and changes nothing.
     */
    async markTransferAnchored(input: {
      transferId: string;
      txid: string;
      vout: number;
      proof: MerkleProof;
      blockHeight: number | null;
    }): Promise<void> {
      const transfer = await stored(input.transferId);
      if (deps.network) await trackAnchorTx(deps.mongo, deps.network, input.txid);
      await transfers.updateOne(
        { _id: input.transferId },
        {
          $set: {
            status: 'anchored',
            anchor: { txid: input.txid, vout: input.vout, proof: input.proof, blockHeight: input.blockHeight },
            lastError: null,
            updatedAt: new Date(),
          },
        },
      );
      const previous = transfer.record.previous as { txid: string };
      // A bulk-registered patch has no head document before its first transfer: its registration's anchor is the head.
      const fromHead =
        transfer.seq === 1
          ? { $or: [{ 'head.txid': previous.txid }, { head: null, 'anchor.txid': previous.txid }] }
          : { 'head.txid': previous.txid };
      await patches.updateOne(
        { _id: transfer.uid, ...fromHead },
        {
          $set: {
            owner: String(transfer.record.to),
            head: { txid: input.txid, recordHash: transfer.recordHash, seq: transfer.seq },
            updatedAt: new Date(),
          },
        },
      );
      await announceVerdictChange(deps.redis, [transfer.uid], deps.logger);
      if (transfer.status !== 'anchored') recordTransferOutcome(deps.metrics, 'completed');
      deps.logger.onChain.info('transfer anchored', { uid: transfer.uid, seq: transfer.seq, txid: input.txid });
      // The patch's tenant owns the event: a transfer is a change to one of its records.
      await emitFromActivity(deps, 'transfer.anchored', async () => {
        const patch = await patches.findById(transfer.uid, { tenantId: 1 }).lean();
        const data = { transferId: input.transferId, uid: transfer.uid, seq: transfer.seq, txid: input.txid, status: 'anchored' as const };
        return [{ tenantId: patch?.tenantId ?? DEFAULT_TENANT_ID, type: 'transfer.anchored', subject: input.transferId, data }];
      });
    },

    async markTransferFailed(input: { transferId: string; reason: string }): Promise<void> {
      const before = await transfers.findById(input.transferId, { status: 1, uid: 1 }).lean();
      await transfers.updateOne(
        { _id: input.transferId, status: { $ne: 'anchored' } },
        { $set: { status: 'failed', lastError: input.reason, updatedAt: new Date() } },
      );
      if (before) await announceVerdictChange(deps.redis, [before.uid], deps.logger);
      if (before && before.status !== 'anchored' && before.status !== 'failed') recordTransferOutcome(deps.metrics, 'failed');
    },
  };
}

export type TransferActivities = ReturnType<typeof createTransferActivities>;

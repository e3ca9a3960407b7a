import type { Client } from '@temporalio/client';
import type { RequestHandler } from 'express';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { p2pkhAddress, UtcTime } from '../fields';
import type { Network } from '../../src/chain/addresses';
import { DomainError } from '../../src/errors';
import type { Metrics } from '../../src/metrics';
import { bindOwnerAddress, boundAccount, checkExpiry, consumeNonce, NONCE_PATTERN } from '../../src/ownership/guards';
import { checkOwnerSignature, type OwnerMessage } from '../../src/ownership/messages';
import { UID_PATTERN } from '../../src/registration/ids';
import { currentHead, patchModel, type PatchDocument } from '../../src/registration/models';
import { TRANSFER_ID_PATTERN } from '../../src/transfer/ids';
import { getTransferStatus, startTransfer } from '../../src/transfer/launch';
import { ownerOf } from '../middleware/ownerSession';
import { defineRoute, type RouteSpec } from '../routing';

/** How far ahead a signed transfer message may expire: long enough to sign and send, short enough to bound replay. */
export const SIGNED_MESSAGE_MAX_SECONDS = 3600;

export interface TransferRouteDeps {
  temporal: Client;
  mongo: Connection;
  metrics: Metrics;
  network: Network;
  ownerSession: RequestHandler;
}

export const Hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `${bytes} bytes of lower-case hex`);
export const DerHex = z.string().regex(/^([0-9a-f]{2}){8,80}$/, 'a DER signature in lower-case hex');
export const UidParams = z.object({ uid: z.string().regex(UID_PATTERN, 'a uid_tag_id') });

const TransferAcceptedSchema = z.object({ transferId: z.string(), statusUrl: z.string() }).openapi('TransferAccepted');
const TransferStatusSchema = z
  .object({
    transferId: z.string(),
    uid: z.string(),
    state: z.enum(['running', 'completed', 'failed']),
    status: z.enum(['starting', 'pending', 'anchoring', 'anchored', 'failed']),
    seq: z.number().int().optional(),
    from: z.string().optional(),
    to: z.string().optional(),
    progress: z.unknown().optional(),
    txid: z.string().optional(),
    recordHash: z.string().optional(),
    lastError: z.string().optional(),
  })
  .openapi('TransferStatus');

export const statusUrlOfTransfer = (transferId: string) => `/v1/transfers/${encodeURIComponent(transferId)}`;

/** The patch, anchored, with a head; else the 404 or 409 a caller needs. */
export async function anchoredPatch(mongo: Connection, uid: string): Promise<PatchDocument & { head: NonNullable<PatchDocument['head']> }> {
  const patch = await patchModel(mongo).findById(uid).lean();
  if (!patch) throw new DomainError('NOT_FOUND', `No patch ${uid}.`);
  const head = currentHead(patch);
  if (patch.status !== 'anchored' || !head) throw new DomainError('CONFLICT', `${uid} is not anchored yet.`, { reason: 'not_anchored' });
  return { ...patch, head };
}

/** Throws the error envelope for a failed owner-signature check. */
export function requireValidSignature(check: ReturnType<typeof checkOwnerSignature>): void {
  if (!check.ok)
    throw new DomainError('SIGNATURE_INVALID', 'The signature does not prove the owner of this patch.', { reason: check.reason });
}

/** The session's account must be the one the owner address is bound to (POST /v1/owner/addresses). */
export async function requireBoundTo(mongo: Connection, address: string, userId: string): Promise<void> {
  const account = await boundAccount(mongo, address);
  if (account !== userId) {
    throw new DomainError('FORBIDDEN', 'This session does not act for the owner address.', {
      reason: account === null ? 'address_not_bound' : 'bound_to_another_account',
    });
  }
}

/** Ownership transfer: POST /v1/patches/:uid/transfers starts a TransferWorkflow; GET /v1/transfers/:id reads it. */
export function transferRoutes(deps: TransferRouteDeps): RouteSpec[] {
  const TransferBody = z
    .object({
      newOwner: p2pkhAddress(deps.network),
      headTxid: Hex(32),
      nonce: z.string().regex(NONCE_PATTERN, '16–64 characters of A–Z, a–z, 0–9, _ or -'),
      expiresAt: UtcTime,
      ownerPubKey: Hex(33),
      ownerSignature: DerHex,
    })
    .strict()
    .openapi('TransferRequest');

  const BindBody = z
    .object({
      address: p2pkhAddress(deps.network),
      nonce: z.string().regex(NONCE_PATTERN, '16–64 characters of A–Z, a–z, 0–9, _ or -'),
      expiresAt: UtcTime,
      pubKey: Hex(33),
      signature: DerHex,
    })
    .strict()
    .openapi('BindAddressRequest');

  return [
    defineRoute({
      method: 'post',
      path: '/v1/owner/addresses',
      summary:
        "Bind an owner address to the session's account: the address's key signs {purpose: 'patchproof.bind-address', address, userId, nonce, expiresAt}. Transfers and unlocks then require that account's session.",
      tags: ['Transfer'],
      access: 'public',
      rateLimit: 'public',
      ownerSession: deps.ownerSession,
      request: { body: BindBody },
      responses: {
        201: { description: 'Bound (or already bound to this account).', schema: z.object({ address: z.string(), userId: z.string() }) },
        401: { description: 'No valid SVD session.' },
        403: { description: "The signature does not prove the address's key." },
        409: { description: 'The address is bound to another account, or the nonce was used.' },
      },
      handler: async ({ body }, _req, res) => {
        const { userId } = ownerOf(res.locals);
        const expiry = checkExpiry(body.expiresAt, SIGNED_MESSAGE_MAX_SECONDS);
        if (!expiry.ok) throw new DomainError('SIGNATURE_EXPIRED', expiry.reason);
        const message: OwnerMessage = {
          purpose: 'patchproof.bind-address',
          address: body.address,
          userId,
          nonce: body.nonce,
          expiresAt: body.expiresAt,
        };
        requireValidSignature(
          checkOwnerSignature({
            message,
            pubKeyHex: body.pubKey,
            signatureDerHex: body.signature,
            expectedAddress: body.address,
            network: deps.network,
          }),
        );
        if (!(await consumeNonce(deps.mongo, { purpose: message.purpose, nonce: body.nonce, uid: body.address, expiresAt: expiry.at }))) {
          throw new DomainError('NONCE_REPLAYED', 'This signed message was already used.');
        }
        if (!(await bindOwnerAddress(deps.mongo, body.address, userId))) {
          throw new DomainError('CONFLICT', 'This address is bound to another account.', { reason: 'bound_to_another_account' });
        }
        res.status(201).json({ address: body.address, userId });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/patches/:uid/transfers',
      summary:
        "Transfer a patch: the current owner's SVD session, and the owner's signature over {purpose, uid, headTxid, newOwner, nonce, expiresAt}. Starts TransferWorkflow transfer-<uid>-<headTxid>.",
      tags: ['Transfer'],
      access: 'public',
      rateLimit: 'public',
      ownerSession: deps.ownerSession,
      request: { params: UidParams, body: TransferBody },
      responses: {
        202: { description: 'Accepted; follow statusUrl.', schema: TransferAcceptedSchema },
        401: { description: 'No valid SVD session.' },
        403: { description: 'The signature does not prove the current owner, or the address belongs to another account.' },
        404: { description: 'No such patch.' },
        409: { description: 'Not anchored yet, the head moved (details.headTxid), a transfer of this head runs, or the nonce was used.' },
      },
      handler: async ({ params, body }, _req, res) => {
        const session = ownerOf(res.locals);
        const patch = await anchoredPatch(deps.mongo, params.uid);
        if (body.headTxid !== patch.head.txid) {
          throw new DomainError('CONFLICT', 'The patch has moved on since this message was signed.', {
            reason: 'stale_head',
            headTxid: patch.head.txid,
          });
        }
        if (body.newOwner === patch.owner) throw new DomainError('VALIDATION_FAILED', 'The new owner is the current owner.');
        const expiry = checkExpiry(body.expiresAt, SIGNED_MESSAGE_MAX_SECONDS);
        if (!expiry.ok) throw new DomainError('SIGNATURE_EXPIRED', expiry.reason);
        const message: OwnerMessage = {
          purpose: 'patchproof.transfer',
          uid: params.uid,
          headTxid: body.headTxid,
          newOwner: body.newOwner,
          nonce: body.nonce,
          expiresAt: body.expiresAt,
        };
        requireValidSignature(
          checkOwnerSignature({
            message,
            pubKeyHex: body.ownerPubKey,
            signatureDerHex: body.ownerSignature,
            expectedAddress: patch.owner,
            network: deps.network,
          }),
        );
        await requireBoundTo(deps.mongo, patch.owner, session.userId);
        if (!(await consumeNonce(deps.mongo, { purpose: message.purpose, nonce: body.nonce, uid: params.uid, expiresAt: expiry.at }))) {
          throw new DomainError('NONCE_REPLAYED', 'This signed message was already used.');
        }
        const started = await startTransfer(
          deps.temporal,
          {
            uid: params.uid,
            headTxid: body.headTxid,
            newOwner: body.newOwner,
            authorization: {
              kind: 'owner-signature',
              nonce: body.nonce,
              expiresAt: body.expiresAt,
              pubKeyHex: body.ownerPubKey,
              signatureDerHex: body.ownerSignature,
            },
          },
          deps.metrics,
        );
        if (started.alreadyStarted) {
          throw new DomainError('CONFLICT', 'A transfer of this head is already under way.', {
            reason: 'transfer_in_progress',
            transferId: started.workflowId,
            statusUrl: statusUrlOfTransfer(started.workflowId),
          });
        }
        res
          .status(202)
          .location(statusUrlOfTransfer(started.workflowId))
          .json({ transferId: started.workflowId, statusUrl: statusUrlOfTransfer(started.workflowId) });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/transfers/:transferId',
      summary: "A transfer's state: live progress while its workflow runs, the stored record after.",
      tags: ['Transfer'],
      access: 'public',
      rateLimit: 'public',
      request: { params: z.object({ transferId: z.string().regex(TRANSFER_ID_PATTERN, 'a transfer id (transfer-<uid>-<headTxid>)') }) },
      responses: {
        200: { description: 'The transfer.', schema: TransferStatusSchema },
        404: { description: 'No such transfer.' },
      },
      handler: async ({ params }, _req, res) => {
        const status = await getTransferStatus(deps.temporal, deps.mongo, params.transferId);
        if (!status) throw new DomainError('NOT_FOUND', 'No such transfer.');
        res.setHeader('Cache-Control', 'no-store');
        res.json(status);
      },
    }),
  ];
}

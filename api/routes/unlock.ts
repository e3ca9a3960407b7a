import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import type { Network } from '../../src/chain/addresses';
import { DomainError } from '../../src/errors';
import { checkOwnerSignature } from '../../src/ownership/messages';
import { issueUnlockChallenge, takeUnlockChallenge } from '../../src/unlock/challenges';
import { decryptContent, unlockableContentId, unlockableContentModel } from '../../src/unlock/content';
import { ownerOf } from '../middleware/ownerSession';
import { defineRoute, type RouteSpec } from '../routing';
import { anchoredPatch, DerHex, Hex, requireBoundTo, requireValidSignature, UidParams } from './transfers';

export interface UnlockRouteDeps {
  mongo: Connection;
  redis: Redis;
  network: Network;
  ownerSession: RequestHandler;
  unlockContentSecret: string;
}

/**
 * Unlockable content: the owner's session asks for a fresh challenge, the owner's key signs
 * {purpose: 'patchproof.unlock', uid, headTxid, challenge}, and the server decrypts what it stored at registration.
 * A challenge is single-use and expires in two minutes, so a captured signature unlocks nothing later.
 */
export function unlockRoutes(deps: UnlockRouteDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/patches/:uid/unlock/challenge',
      summary: "A fresh, single-use challenge for the owner's key to sign (valid 120 s).",
      tags: ['Unlock'],
      access: 'public',
      rateLimit: 'public',
      ownerSession: deps.ownerSession,
      request: { params: UidParams },
      responses: {
        201: {
          description: 'The challenge and the head txid the message must name.',
          schema: z.object({ challenge: z.string(), headTxid: z.string(), expiresAt: z.string() }),
        },
        403: { description: 'This session does not act for the owner address.' },
        404: { description: 'No such patch.' },
        409: { description: 'The patch is not anchored yet (CONFLICT, reason not_anchored).' },
      },
      handler: async ({ params }, _req, res) => {
        const { userId } = ownerOf(res.locals);
        const patch = await anchoredPatch(deps.mongo, params.uid);
        await requireBoundTo(deps.mongo, patch.owner, userId);
        const issued = await issueUnlockChallenge(deps.redis, { uid: params.uid, userId });
        res.setHeader('Cache-Control', 'no-store');
        res.status(201).json({ ...issued, headTxid: patch.head.txid });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/patches/:uid/unlock',
      summary: "The patch's unlockable content, for its owner: answers a challenge with the owner's signature.",
      tags: ['Unlock'],
      access: 'public',
      rateLimit: 'public',
      ownerSession: deps.ownerSession,
      request: {
        params: UidParams,
        body: z
          .object({ challenge: Hex(32), ownerPubKey: Hex(33), ownerSignature: DerHex })
          .strict()
          .openapi('UnlockRequest'),
      },
      responses: {
        200: { description: 'The content.', schema: z.object({ uid: z.string(), content: z.string() }) },
        400: { description: 'The challenge expired or was never issued (SIGNATURE_EXPIRED).' },
        403: { description: 'The signature does not prove the current owner, or the challenge was issued to another session.' },
        404: { description: 'No such patch, or it has no unlockable content.' },
        409: { description: 'The challenge was already used (NONCE_REPLAYED).' },
      },
      handler: async ({ params, body }, _req, res) => {
        const { userId } = ownerOf(res.locals);
        const patch = await anchoredPatch(deps.mongo, params.uid);
        await requireBoundTo(deps.mongo, patch.owner, userId);
        const use = await takeUnlockChallenge(deps.redis, body.challenge);
        if (!use.ok) {
          if (use.reason === 'replayed') throw new DomainError('NONCE_REPLAYED', 'This challenge was already used; ask for a new one.');
          throw new DomainError('SIGNATURE_EXPIRED', 'The challenge expired or was never issued; ask for a new one.');
        }
        if (use.uid !== params.uid || use.userId !== userId)
          throw new DomainError('FORBIDDEN', 'The challenge was issued for another patch or session.');
        requireValidSignature(
          checkOwnerSignature({
            message: { purpose: 'patchproof.unlock', uid: params.uid, headTxid: patch.head.txid, challenge: body.challenge },
            pubKeyHex: body.ownerPubKey,
            signatureDerHex: body.ownerSignature,
            expectedAddress: patch.owner,
            network: deps.network,
          }),
        );
        const stored = await unlockableContentModel(deps.mongo).findById(unlockableContentId(params.uid, patch.requestHash)).lean();
        if (!stored) throw new DomainError('NOT_FOUND', `${params.uid} has no unlockable content.`);
        res.setHeader('Cache-Control', 'no-store');
        res.json({ uid: params.uid, content: decryptContent(deps.unlockContentSecret, params.uid, stored) });
      },
    }),
  ];
}

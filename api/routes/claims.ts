import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { p2pkhAddress, UtcTime } from '../fields';
import type { Network } from '../../src/chain/addresses';
import { CLAIM_ID_PATTERN } from '../../src/claim/ids';
import { approveClaim, getClaimState, startClaim } from '../../src/claim/launch';
import { DomainError } from '../../src/errors';
import type { Metrics } from '../../src/metrics';
import { checkExpiry, consumeNonce, NONCE_PATTERN } from '../../src/ownership/guards';
import { checkOwnerSignature, type OwnerMessage } from '../../src/ownership/messages';
import { UID_PATTERN } from '../../src/registration/ids';
import { defineRoute, type RouteSpec } from '../routing';
import { anchoredPatch, DerHex, Hex, requireValidSignature } from './transfers';

export interface ClaimRouteDeps {
  temporal: Client;
  mongo: Connection;
  metrics: Metrics;
  network: Network;
  intentTtlMs: number;
}

const ClaimStateSchema = z
  .object({
    uid: z.string(),
    customer: z.string(),
    status: z.enum(['pending', 'approved', 'completed', 'expired', 'failed']),
    expiresAt: z.string(),
    approvedBy: z.string().optional(),
    transferId: z.string().optional(),
    txid: z.string().optional(),
    error: z.string().optional(),
  })
  .openapi('ClaimState');

const statusUrlOfClaim = (claimId: string) => `/v1/pos/claim-intents/${encodeURIComponent(claimId)}`;
const ClaimIdParams = z.object({ claimId: z.string().regex(CLAIM_ID_PATTERN, 'a claim id (claim-<uid>-<nonce>)') });

/**
 * Point-of-sale claims: a customer signs an intent (public), a merchant approves it (API key), and the claim
 * workflow transfers the patch to the customer; an intent not approved in time expires on the workflow's timer.
 */
export function claimRoutes(deps: ClaimRouteDeps): RouteSpec[] {
  const IntentBody = z
    .object({
      uid: z.string().regex(UID_PATTERN, 'a uid_tag_id'),
      customer: z
        .object({
          address: p2pkhAddress(deps.network),
          pubKey: Hex(33),
        })
        .strict(),
      nonce: z.string().regex(NONCE_PATTERN, '16–64 characters of A–Z, a–z, 0–9, _ or -'),
      expiresAt: UtcTime,
      signature: DerHex,
    })
    .strict()
    .openapi('ClaimIntentRequest');

  return [
    defineRoute({
      method: 'post',
      path: '/v1/pos/claim-intents',
      summary:
        "A customer's claim intent: the customer's key signs {purpose: 'patchproof.claim', uid, address, nonce, expiresAt}. Starts ClaimWorkflow claim-<uid>-<nonce>, which waits for a merchant's approval until expiresAt.",
      tags: ['Point of sale'],
      access: 'public',
      rateLimit: 'public',
      request: { body: IntentBody },
      responses: {
        201: {
          description: 'The claim is pending; follow statusUrl.',
          schema: z.object({ claimId: z.string(), status: z.literal('pending'), statusUrl: z.string() }),
        },
        403: { description: "The signature does not prove the customer's address." },
        404: { description: 'No such patch.' },
        409: { description: 'Not anchored yet, or the nonce was used.' },
      },
      handler: async ({ body }, _req, res) => {
        const patch = await anchoredPatch(deps.mongo, body.uid);
        if (body.customer.address === patch.owner) throw new DomainError('VALIDATION_FAILED', 'The customer already owns this patch.');
        const expiry = checkExpiry(body.expiresAt, deps.intentTtlMs / 1000);
        if (!expiry.ok) throw new DomainError('SIGNATURE_EXPIRED', expiry.reason);
        const message: OwnerMessage = {
          purpose: 'patchproof.claim',
          uid: body.uid,
          address: body.customer.address,
          nonce: body.nonce,
          expiresAt: body.expiresAt,
        };
        requireValidSignature(
          checkOwnerSignature({
            message,
            pubKeyHex: body.customer.pubKey,
            signatureDerHex: body.signature,
            expectedAddress: body.customer.address,
            network: deps.network,
          }),
        );
        if (!(await consumeNonce(deps.mongo, { purpose: message.purpose, nonce: body.nonce, uid: body.uid, expiresAt: expiry.at }))) {
          throw new DomainError('NONCE_REPLAYED', 'This signed intent was already used.');
        }
        const started = await startClaim(
          deps.temporal,
          {
            uid: body.uid,
            customer: { address: body.customer.address, pubKeyHex: body.customer.pubKey },
            nonce: body.nonce,
            expiresAt: body.expiresAt,
            signatureDerHex: body.signature,
          },
          deps.metrics,
        );
        res
          .status(201)
          .location(statusUrlOfClaim(started.workflowId))
          .json({ claimId: started.workflowId, status: 'pending', statusUrl: statusUrlOfClaim(started.workflowId) });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/pos/claim-intents/:claimId/approve',
      summary: 'A merchant approves a pending claim; the claim workflow then transfers the patch to the customer.',
      tags: ['Point of sale'],
      access: 'apiKey',
      rateLimit: 'admin',
      request: { params: ClaimIdParams, body: z.object({ approvedBy: z.string().trim().min(1).max(200) }).strict() },
      responses: {
        200: { description: 'Approved; the transfer is under way.', schema: ClaimStateSchema },
        404: { description: 'No such claim.' },
        409: { description: 'The claim is not pending (approved, expired, completed or failed).' },
      },
      handler: async ({ params, body }, _req, res) => {
        res.json(await approveClaim(deps.temporal, params.claimId, body.approvedBy));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/pos/claim-intents/:claimId',
      summary: "A claim's state: pending, approved, completed (with the transfer's txid), expired or failed.",
      tags: ['Point of sale'],
      access: 'public',
      rateLimit: 'public',
      request: { params: ClaimIdParams },
      responses: { 200: { description: 'The claim.', schema: ClaimStateSchema }, 404: { description: 'No such claim.' } },
      handler: async ({ params }, _req, res) => {
        const state = await getClaimState(deps.temporal, params.claimId);
        if (!state) throw new DomainError('NOT_FOUND', 'No such claim.');
        res.setHeader('Cache-Control', 'no-store');
        res.json(state);
      },
    }),
  ];
}

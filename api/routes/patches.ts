import type { Client } from '@temporalio/client';
import { batchIdOfItem } from '../../src/bulkRegistration/ids';
import type { Request } from 'express';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { p2pkhAddress } from '../fields';
import type { Network } from '../../src/chain/addresses';
import { DomainError } from '../../src/errors';
import type { KmsClient } from '../../src/kms/client';
import type { Metrics } from '../../src/metrics';
import { REGISTRATION_ID_PATTERN, registrationWorkflowId, uidFromRegistrationId, UID_PATTERN } from '../../src/registration/ids';
import { RegistrationConflictError, submitRegistration } from '../../src/registration/intake';
import { getRegistrationStatus } from '../../src/registration/launch';
import type { RegistrationQueue } from '../../src/registration/queue';
import { CHAIN_TIP_AGE_STEP_SEC, verifyPatch, withLocalTip, type Verification } from '../../src/registration/verify';
import { servedProofBundle } from '../../src/registration/selfContainedBundle';
import { sendCacheableJson } from '../cacheable';
import { prefersHtml, sendPatchPage, type PatchPageDeps } from './patchPage';
import { VerdictCache } from '../verdictCache';
import { sharedLocalTip } from '../../src/chainFollower/localChain';
import type { Keyring } from '../../src/rotation/keyring';
import type { WocClient } from '../../src/woc/client';
import { defineRoute, type RouteSpec } from '../routing';
import { tapRoute, type TapRouteDeps } from './taps';
import type { Redis } from 'ioredis';
import { actorOf } from '../../src/tenancy/apiKeys';
import { registrationQuota } from '../../src/tenancy/quota';
import { principalOf } from '../middleware/apiKey';

const text = (max: number) => z.string().trim().min(1).max(max);

const AcceptedSchema = z.object({ registrationId: z.string(), statusUrl: z.string() }).openapi('RegistrationAccepted');

const RegistrationStatusSchema = z
  .object({
    registrationId: z.string(),
    uid: z.string(),
    state: z.enum(['running', 'completed', 'failed']),
    status: z.enum(['starting', 'pending', 'anchoring', 'anchored', 'failed']),
    progress: z.unknown().optional(),
    txid: z.string().optional(),
    recordHash: z.string().optional(),
    lastError: z.string().optional(),
  })
  .openapi('RegistrationStatus');

export interface PatchRouteDeps {
  temporal: Client;
  mongo: Connection;
  metrics: Metrics;
  network: Network;
  kms: KmsClient;
  /** The chain service, asked by verification only about anchor txs the chain follower has never been told of. */
  woc: Pick<WocClient, 'getTx'>;
  /** Key settings: the issuer key directory that verification resolves keys through is built from them. */
  keys: Keyring;
  anchorConfirmations: number;
  /** The most verification and POST /v1/patches may take before answering 503 (REQUEST_DEADLINE_MS). */
  deadlineMs?: number;
  unlockContentSecret: string;
  /** The bound on registrations waiting to be anchored: past it, POST /v1/patches answers 503 with Retry-After. */
  queue?: RegistrationQueue;
  /** Settled verification answers kept in this process; without it every request reads the database. */
  verdicts?: VerdictCache<Verification>;
  /** What the public patch page needs beside the verdict: the explorer link and the image proxy. */
  page: PatchPageDeps;
  /** The NFC tap route (GET /t); it shares this module's verdicts. */
  taps?: Omit<TapRouteDeps, 'page' | 'mongo' | 'metrics' | 'deadlineMs'>;
  /** Where the per-key registrations/day quota is counted, and its default (API_KEY_REGISTRATIONS_PER_DAY). */
  redis: Redis;
  registrationsPerDay: number;
}

const VerificationSchema = z
  .object({
    uid: z.string(),
    status: z.enum(['authentic', 'pending', 'not_found', 'invalid', 'revoked-key']),
    reason: z.string().optional(),
    record: z.record(z.string(), z.unknown()).optional(),
    recordHash: z.string().optional(),
    issuerSignature: z
      .object({ valid: z.boolean(), keyIdentifier: z.string(), pubKeyHex: z.string(), signatureDerHex: z.string() })
      .optional(),
    ownership: z
      .object({
        currentOwner: z.string(),
        chain: z.array(
          z.object({
            kind: z.enum(['registration', 'transfer']),
            seq: z.number().int(),
            owner: z.string(),
            txid: z.string().nullable(),
            recordHash: z.string().optional(),
            record: z.record(z.string(), z.unknown()).optional(),
            anchor: z.record(z.string(), z.unknown()).optional(),
          }),
        ),
        pendingTransfer: z.string().optional(),
      })
      .optional(),
    anchor: z
      .object({
        txid: z.string(),
        vout: z.number().int(),
        leaf: z.string(),
        index: z.number().int(),
        count: z.number().int(),
        path: z.array(z.object({ side: z.enum(['L', 'R']), hash: z.string() })),
        root: z.string(),
        blockHeight: z.number().int().nullable(),
        confirmations: z.number().int(),
      })
      .optional(),
    signedTreeHead: z
      .object({ treeHead: z.record(z.string(), z.unknown()), inclusion: z.record(z.string(), z.unknown()) })
      .optional()
      .describe(
        'Bulk-registered patches: the tree head the issuer signed and the record’s inclusion path; `anchor` starts at the tree head.',
      ),
    revokedKey: z
      .object({
        kid: z.string(),
        publicKey: z.string(),
        revokedAt: z.string(),
        reason: z.string(),
        seq: z.number().int(),
        claimedAt: z.string().nullable(),
        anchoredAt: z.string().nullable(),
      })
      .optional()
      .describe(
        '`revoked-key`: the revoked issuer key, the record it signed (0: the registration, n: the n-th transfer), the time that record states and its anchor’s block time.',
      ),
    chain: z
      .object({
        source: z.enum(['local', 'chain-service']),
        tipHeight: z.number().int().nullable(),
        tipHash: z.string().nullable(),
        tipTime: z.string().nullable(),
        chainTipAge: z.number().int().nullable(),
      })
      .optional()
      .describe(
        'The chain state confirmations are counted from: the chain follower’s local tip, and `chainTipAge`, seconds (in steps of 10) since the follower last reached the chain service. `source` is `chain-service` only for an anchor tx the follower had not been told of.',
      ),
  })
  .openapi('PatchVerification');

/**
 * Verdicts are cacheable by CDNs for a short while: confirmations grow with every block and a pending verdict
 * turns authentic within minutes. Settled verdicts may be served stale while the origin is unreachable.
 */
const VERIFY_CACHE_CONTROL = {
  settled: `public, max-age=${CHAIN_TIP_AGE_STEP_SEC}, stale-while-revalidate=30, stale-if-error=3600`,
  unsettled: 'public, max-age=5',
};
const PROOF_CACHE_CONTROL = 'public, max-age=60';

/** The body of POST /v1/patches, and of each item of POST /v1/patch-batches. */
export function registrationBodySchema(network: Network) {
  return z
    .object({
      product: z
        .object({
          uid_tag_id: z.string().regex(UID_PATTERN, '1–128 characters of A–Z, a–z, 0–9, . _ : - (starting alphanumeric)'),
          name: text(200).optional(),
          category: text(100).optional(),
          sku: text(100).optional(),
          serial_number: text(100).optional(),
          material: text(100).optional(),
          brand: text(100).optional(),
        })
        .strict(),
      metadata: z
        .object({ notes: text(2000).optional(), image: z.url().max(2000).optional(), patch_location: text(200).optional() })
        .strict()
        .optional(),
      auth: z
        .object({
          owner: p2pkhAddress(network),
        })
        .strict(),
      tag: z
        .object({
          type: z.literal('ntag424'),
          uid: z
            .string()
            .regex(/^[0-9a-fA-F]{14}$/, 'a 7-byte NFC UID as 14 hex digits')
            .transform((uid) => uid.toUpperCase()),
        })
        .strict()
        .optional()
        .describe(
          'The NTAG 424 DNA tag sewn into the patch, in SUN mode (docs/TAGS.md). The signed record commits to its UID and the key version it was provisioned under; taps of its URL (GET /t) then verify the patch.',
        ),
      unlockable: z
        .object({ content: z.string().min(1).max(4000) })
        .strict()
        .optional()
        .describe("Text only the patch's owner can read (POST /v1/patches/:uid/unlock); stored encrypted, never in the signed record."),
    })
    .strict()
    .openapi('RegistrationRequest');
}

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** The Idempotency-Key header as the routes declare it: 1–128 printable ASCII characters without spaces. */
export function idempotencyKeyHeader(required: boolean) {
  const key = z
    .string()
    .regex(IDEMPOTENCY_KEY_PATTERN, 'Idempotency-Key must be 1–128 printable ASCII characters.')
    .describe('The same key and request again answer with the first result instead of starting anew.');
  return z.object({ 'idempotency-key': required ? key : key.optional() });
}

/** Idempotency-Key: 1–128 printable ASCII characters, or absent. */
export function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new DomainError('VALIDATION_FAILED', 'Idempotency-Key must be 1–128 printable ASCII characters.');
  }
  return key;
}

/** Where a registration's state is read: its own status route, or for a bulk-registered patch, its batch. */
const statusUrlOf = (registrationId: string) => {
  const batchId = batchIdOfItem(registrationId);
  return batchId ? `/v1/patch-batches/${batchId}` : `/v1/registrations/${encodeURIComponent(registrationId)}`;
};

/** A verdict that will not change without a new record, a revocation or a reorg: pending and not_found soon do. */
function isSettled(verification: Verification): boolean {
  return verification.status !== 'pending' && verification.status !== 'not_found';
}

/** Registration routes: POST /v1/patches starts a RegistrationWorkflow; GET /v1/registrations/:id reads it. */
export function patchRoutes(deps: PatchRouteDeps): RouteSpec[] {
  const RegistrationBody = registrationBodySchema(deps.network);

  const verdicts = deps.verdicts ?? new VerdictCache<Verification>({ ttlMs: 0, maxEntries: 1 });
  // A revocation forgets every verdict: the key settings they are checked against must be read again too.
  verdicts.whenAllForgotten(() => deps.keys.forget());
  /** The verdict of a patch: a kept settled one brought up to the local tip, else a fresh verification. */
  const verified = async (uid: string): Promise<Verification> => {
    const kept = await verdicts.answer(uid, async () => {
      const verification = await verifyPatch(
        {
          mongo: deps.mongo,
          kms: deps.kms,
          woc: deps.woc,
          network: deps.network,
          requiredConfirmations: deps.anchorConfirmations,
          keys: deps.keys,
        },
        uid,
      );
      // An answer that needed the chain service is not kept: the follower will soon have the tx itself.
      return { value: verification, settled: isSettled(verification) && verification.chain?.source !== 'chain-service' };
    });
    return kept.settled ? withLocalTip(kept.value, await sharedLocalTip(deps.mongo, deps.network), Date.now()) : kept.value;
  };
  const cacheControlOf = (verification: Verification) =>
    isSettled(verification) ? VERIFY_CACHE_CONTROL.settled : VERIFY_CACHE_CONTROL.unsettled;

  const verifyRoute = (path: string, summary: string) =>
    defineRoute({
      method: 'get',
      path,
      summary,
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      ...(deps.deadlineMs !== undefined && { deadlineMs: deps.deadlineMs }),
      request: { params: z.object({ uid: z.string().regex(UID_PATTERN, 'a uid_tag_id') }) },
      responses: {
        200: {
          description:
            'The verdict, with everything needed to check it (JSON, the default). A browser (`Accept: text/html` preferred) gets the patch page instead, as on /p/{uid}. Strong ETag; cacheable briefly; `Vary: Accept`.',
          schema: VerificationSchema,
        },
        304: { description: 'Not modified (If-None-Match matched the ETag).' },
        404: { description: 'Only for `Accept: text/html`: the page of an unknown patch. JSON answers 200 with status not_found.' },
      },
      handler: async ({ params }, req, res) => {
        const verification = await verified(params.uid);
        if (prefersHtml(req)) return sendPatchPage(req, res, verification, { cacheControl: cacheControlOf(verification), deps: deps.page });
        // The same URL serves the page: caches must key the JSON on Accept too.
        res.vary('Accept');
        sendCacheableJson(res, verification, cacheControlOf(verification));
      },
    });

  return [
    ...(deps.taps
      ? [
          tapRoute(
            {
              ...deps.taps,
              mongo: deps.mongo,
              metrics: deps.metrics,
              page: deps.page,
              ...(deps.deadlineMs !== undefined && { deadlineMs: deps.deadlineMs }),
            },
            verified,
          ),
        ]
      : []),
    defineRoute({
      method: 'get',
      path: '/v1/patches/:uid/proof',
      summary:
        'The self-contained proof bundle of an anchored patch (format patchproof-proof/2: anchor transactions in BEEF with their BUMPs, and block headers); `patchproof verify-proof <file> --headers <file>` checks it offline.',
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      request: {
        params: z.object({ uid: z.string().regex(UID_PATTERN, 'a uid_tag_id') }),
        query: z.object({
          format: z
            .enum(['1', '2'])
            .optional()
            .describe('1: the format 1 bundle (the anchor transaction is looked up on a chain service). Default 2.'),
        }),
      },
      responses: {
        200: {
          description:
            'The proof bundle, read from the database only (no chain request). Format 2 by default; format 1 while the chain follower has not yet proven every anchor transaction with its bytes and block header (`format` in the body says which). Strong ETag.',
        },
        304: { description: 'Not modified (If-None-Match matched the ETag).' },
        404: { description: 'No anchored registration for this uid.' },
      },
      handler: async ({ params, query }, _req, res) => {
        const bundle = await servedProofBundle(deps.mongo, deps.network, params.uid, query.format);
        if (!bundle) throw new DomainError('NOT_FOUND', `No anchored registration for ${params.uid}.`);
        res.setHeader('Content-Disposition', `attachment; filename="${params.uid}.proof.json"`);
        sendCacheableJson(res, bundle, PROOF_CACHE_CONTROL);
      },
    }),
    verifyRoute(
      '/v1/patches/:uid/verify',
      'Verify a patch: record integrity, issuer signature, Merkle proof and its anchor on chain. authentic / pending / not_found / invalid.',
    ),
    verifyRoute('/v1/patches/verify/:uid', 'The legacy path of the same verification (kept as an alias).'),
    defineRoute({
      method: 'get',
      path: '/p/:uid',
      summary:
        "The patch's public page, the address its QR code holds: the verdict, the product, the ownership history and the proof, in English or French (Accept-Language). Server-rendered HTML, no script, no request to another origin.",
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      request: { params: z.object({ uid: z.string().regex(UID_PATTERN, 'a uid_tag_id') }) },
      responses: {
        200: {
          description: 'The page (text/html, strict CSP, strong ETag; `Vary: Accept, Accept-Language`).',
          contentType: 'text/html',
          schema: z.string(),
        },
        304: { description: 'Not modified (If-None-Match matched the ETag).' },
        404: { description: 'The page of an unknown patch.', contentType: 'text/html', schema: z.string() },
      },
      handler: async ({ params }, req, res) => {
        const verification = await verified(params.uid);
        sendPatchPage(req, res, verification, { cacheControl: cacheControlOf(verification), deps: deps.page });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/patches',
      summary: 'Register a patch: starts a RegistrationWorkflow (issuer signature, anchoring). A uid is registered once.',
      tags: ['Registration'],
      access: 'apiKey',
      scope: 'patches:write',
      rateLimit: 'admin',
      ...(deps.deadlineMs !== undefined && { deadlineMs: deps.deadlineMs }),
      request: { body: RegistrationBody, headers: idempotencyKeyHeader(false) },
      responses: {
        202: { description: 'Accepted; follow statusUrl.', schema: AcceptedSchema },
        409: { description: "The uid is already registered; details name its registration when it is the caller's tenant's." },
        503: { description: 'QUEUE_FULL: too many registrations wait to be anchored (REGISTRATION_QUEUE_LIMIT); see Retry-After.' },
      },
      handler: async ({ body }, req, res) => {
        const idempotencyKey = idempotencyKeyOf(req);
        const principal = principalOf(res);
        const { unlockable, ...request } = body;
        const { registrationId } = await submitRegistration(
          {
            temporal: deps.temporal,
            mongo: deps.mongo,
            starts: deps.metrics,
            unlockContentSecret: deps.unlockContentSecret,
            ...(deps.queue && { queue: deps.queue }),
            quota: registrationQuota(deps.redis, principal, deps.registrationsPerDay),
          },
          { request, ...(unlockable && { unlockable }), ...(idempotencyKey && { idempotencyKey }), actor: actorOf(principal) },
        ).catch((err: unknown) => {
          if (!(err instanceof RegistrationConflictError)) throw err;
          // uids are public (anyone can verify one), but another tenant's registration and its status stay private.
          if (err.tenantId !== principal.tenantId) {
            throw new DomainError('CONFLICT', err.messageForOtherTenants ?? `${body.product.uid_tag_id} is already registered.`);
          }
          throw new DomainError('CONFLICT', err.message, {
            registrationId: err.registrationId,
            statusUrl: statusUrlOf(err.registrationId),
          });
        });
        res
          .status(202)
          .location(statusUrlOf(registrationId))
          .json({ registrationId, statusUrl: statusUrlOf(registrationId) });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/registrations/:registrationId',
      summary: "A registration's state: live progress while its workflow runs, the stored record after.",
      tags: ['Registration'],
      access: 'apiKey',
      scope: 'patches:read',
      rateLimit: 'admin',
      request: {
        params: z.object({
          registrationId: z.string().regex(REGISTRATION_ID_PATTERN, 'a registration id (registration-<uid>)'),
        }),
      },
      responses: {
        200: { description: 'The registration.', schema: RegistrationStatusSchema },
        404: { description: 'No such registration.' },
      },
      handler: async ({ params }, _req, res) => {
        const uid = uidFromRegistrationId(params.registrationId)!;
        const found = await getRegistrationStatus(deps.temporal, deps.mongo, uid);
        // Another tenant's registration answers as if it did not exist (404, not 403).
        if (!found || found.registrationId !== registrationWorkflowId(uid) || found.tenantId !== principalOf(res).tenantId) {
          throw new DomainError('NOT_FOUND', 'No such registration.');
        }
        const { tenantId: _tenant, ...status } = found;
        res.setHeader('Cache-Control', 'no-store');
        res.json(status);
      },
    }),
  ];
}

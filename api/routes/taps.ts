import type { Connection } from 'mongoose';
import { z } from 'zod';
import type { KmsClient } from '../../src/kms/client';
import type { Logger } from '../../src/logging/logger';
import type { Metrics } from '../../src/metrics';
import type { TapVerdict } from '../../src/patchPage/view';
import type { Verification } from '../../src/registration/verify';
import { verifyTap, type TapResult, type TapSettings } from '../../src/tags/taps';
import { defineRoute, type RouteSpec } from '../routing';
import { prefersHtml, sendPatchPage, type PatchPageDeps } from './patchPage';

export interface TapRouteDeps {
  mongo: Connection;
  kms: Pick<KmsClient, 'sunSession'>;
  metrics: Metrics;
  logger?: Logger;
  settings: TapSettings;
  ipHashKey: Buffer;
  page: PatchPageDeps;
  deadlineMs?: number;
}

const TapAnswerSchema = z
  .object({
    outcome: z.enum(['authentic', 'replayed', 'invalid-mac', 'unknown-tag']),
    tag: z.object({ uid: z.string(), counter: z.number().int().nullable() }).nullable(),
    patchUid: z.string().nullable(),
    verification: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('The patch verification (as GET /v1/patches/{uid}/verify), for a tag bound to a patch.'),
  })
  .openapi('TapAnswer');

// Every tap is a new URL, and a replayed one must never be answered from a cache as authentic.
const TAP_CACHE_CONTROL = 'no-store';

/** What the page shows for a tap outcome: a copied URL or a forged tag overrides the record's own verdict. */
const PAGE_VERDICT: Record<TapResult['outcome'], TapVerdict> = {
  authentic: 'fresh',
  replayed: 'replayed',
  'invalid-mac': 'invalid-tag',
  'unknown-tag': 'invalid-tag',
};

/** GET /t: the URL an NTAG 424 DNA tag writes on every tap (SUN). */
export function tapRoute(deps: TapRouteDeps, verified: (uid: string) => Promise<Verification>): RouteSpec {
  const { piccDataParam, cmacParam } = deps.settings;
  const query = z.object({
    [piccDataParam]: z.string().regex(/^[0-9a-fA-F]{32}$/, 'the encrypted PICCData: 32 hex digits'),
    [cmacParam]: z.string().regex(/^[0-9a-fA-F]{16}$/, 'the SUN MAC: 16 hex digits'),
  });
  return defineRoute({
    method: 'get',
    path: '/t',
    summary: `A tap of a patch's NFC tag (NTAG 424 DNA, SUN): \`${piccDataParam}\` (encrypted UID and tap counter) and \`${cmacParam}\` (truncated AES-CMAC), as the tag writes them (names set by TAP_PICC_DATA_PARAM and TAP_CMAC_PARAM). Authentic once per counter value: a copied URL answers replayed. JSON, or the patch page for a browser.`,
    tags: ['Verification'],
    access: 'public',
    rateLimit: 'public',
    ...(deps.deadlineMs !== undefined && { deadlineMs: deps.deadlineMs }),
    request: { query },
    responses: {
      200: {
        description:
          'The tap outcome: `authentic` (with the patch verification), `replayed` (a counter already seen: a copied URL), `invalid-mac` (forged or cloned tag), `unknown-tag` (a genuine tag bound to no patch). A browser (`Accept: text/html`) gets the patch page. `Cache-Control: no-store`.',
        schema: TapAnswerSchema,
      },
    },
    handler: async ({ query: params }, req, res) => {
      const result = await verifyTap(
        {
          mongo: deps.mongo,
          kms: deps.kms,
          settings: deps.settings,
          ipHashKey: deps.ipHashKey,
          metrics: deps.metrics,
          ...(deps.logger && { logger: deps.logger }),
        },
        {
          piccDataHex: params[piccDataParam]!,
          macHex: params[cmacParam]!,
          clientIp: req.ip ?? 'unknown',
          language: req.acceptsLanguages()[0]?.slice(0, 16) ?? null,
          browser: prefersHtml(req),
        },
      );
      const verification = result.patchUid ? await verified(result.patchUid) : undefined;
      if (prefersHtml(req)) {
        return sendPatchPage(req, res, verification ?? { uid: result.tagUid ?? 'unknown', status: 'not_found' }, {
          cacheControl: TAP_CACHE_CONTROL,
          deps: deps.page,
          tap: PAGE_VERDICT[result.outcome],
        });
      }
      res.vary('Accept');
      res.setHeader('Cache-Control', TAP_CACHE_CONTROL);
      res.json({
        outcome: result.outcome,
        tag: result.tagUid ? { uid: result.tagUid, counter: result.counter } : null,
        patchUid: result.patchUid,
        ...(verification && { verification }),
      });
    },
  });
}

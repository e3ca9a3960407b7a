import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { DomainError } from '../../src/errors';
import { ImageProxyError, type ImageProxy } from '../../src/patchPage/imageProxy';
import { PAGE_LANGUAGES, type PageLanguage } from '../../src/patchPage/messages';
import { PATCH_PAGE_CSP, renderPatchPage } from '../../src/patchPage/page';
import { qrPng, qrSvg, QR_PNG_SIZE } from '../../src/patchPage/qr';
import { patchPagePath, patchViewOf, type TapVerdict } from '../../src/patchPage/view';
import { UID_PATTERN } from '../../src/registration/ids';
import { patchModel } from '../../src/registration/models';
import type { Verification } from '../../src/registration/verify';
import { defineRoute, type RouteSpec } from '../routing';

export interface PatchPageDeps {
  /** Template of an anchor tx's explorer link (`{txid}`), or null for none. */
  explorerTxUrl: string | null;
  images: ImageProxy;
  /** The public origin printed in QR codes; without it, the origin the request came to. */
  publicBaseUrl?: string;
}

/** True when the client would rather read HTML than JSON: a browser. API clients (no Accept, `*\/*`) get JSON. */
export function prefersHtml(req: Request): boolean {
  return req.accepts(['application/json', 'text/html']) === 'text/html';
}

export function pageLanguage(req: Request): PageLanguage {
  return (req.acceptsLanguages(...PAGE_LANGUAGES) || PAGE_LANGUAGES[0]) as PageLanguage;
}

/**
 * Answers with the patch page of a verification: 404 for an unknown patch, the verdict's own Cache-Control, a
 * strong ETag, the page's CSP, and Vary on what chose the representation and its language.
 */
export function sendPatchPage(
  req: Request,
  res: Response,
  verification: Verification,
  options: { cacheControl: string; deps: PatchPageDeps; tap?: TapVerdict },
): void {
  const language = pageLanguage(req);
  const view = patchViewOf(verification, {
    ...(options.tap && { tap: options.tap }),
    imageAllowed: (url) => options.deps.images.allows(url),
  });
  const body = renderPatchPage(view, { language, explorerTxUrl: options.deps.explorerTxUrl });
  res.vary('Accept').vary('Accept-Language');
  res.setHeader('Content-Language', language);
  res.setHeader('Content-Security-Policy', PATCH_PAGE_CSP);
  res.setHeader('Cache-Control', options.cacheControl);
  res.setHeader('ETag', `"${createHash('sha256').update(body).digest('base64url')}"`);
  res
    .status(view.outcome === 'not_found' ? 404 : 200)
    .type('text/html; charset=utf-8')
    .send(body);
}

const uidParams = z.object({ uid: z.string().regex(UID_PATTERN, 'a uid_tag_id') });

/** The patch's public address, as printed in its QR code. */
function pageUrl(req: Request, deps: PatchPageDeps, uid: string): string {
  return `${deps.publicBaseUrl ?? `${req.protocol}://${req.get('host')}`}${patchPagePath(uid)}`;
}

// A QR code depends on the uid and the public origin only: long-lived.
const QR_CACHE_CONTROL = 'public, max-age=86400';

/** QR codes of the page for brands to print, and the product image proxy the page shows. */
export function patchPageRoutes(deps: PatchPageDeps & { mongo: Connection }): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/favicon.ico',
      summary: 'No icon: 204, so a browser opening the patch page records no failed request.',
      tags: ['Verification'],
      access: 'public',
      // Asked by every browser with every first page view; answering it costs nothing.
      rateLimit: 'none',
      responses: { 204: { description: 'No content.' } },
      handler: (_input, _req, res) => {
        res.setHeader('Cache-Control', 'public, max-age=86400');
        res.status(204).end();
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/patches/:uid/qr.svg',
      summary:
        "A QR code (SVG) of the patch's public page `/p/{uid}`, for brands to print. Any well-formed uid: codes are printed before registration.",
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      request: { params: uidParams },
      responses: { 200: { description: 'The QR code.', contentType: 'image/svg+xml', schema: z.string() } },
      handler: async ({ params }, req, res) => {
        res.setHeader('Cache-Control', QR_CACHE_CONTROL);
        res.setHeader('Content-Disposition', `inline; filename="${params.uid}.qr.svg"`);
        res.type('image/svg+xml').send(await qrSvg(pageUrl(req, deps, params.uid)));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/patches/:uid/qr.png',
      summary: 'The same QR code as a PNG, `size` pixels wide (128–2048, default 512).',
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      request: {
        params: uidParams,
        query: z.object({ size: z.coerce.number().int().min(QR_PNG_SIZE.min).max(QR_PNG_SIZE.max).optional() }),
      },
      responses: { 200: { description: 'The QR code.', contentType: 'image/png', schema: z.string().describe('PNG bytes') } },
      handler: async ({ params, query }, req, res) => {
        res.setHeader('Cache-Control', QR_CACHE_CONTROL);
        res.setHeader('Content-Disposition', `inline; filename="${params.uid}.qr.png"`);
        res.type('image/png').send(await qrPng(pageUrl(req, deps, params.uid), query.size));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/patches/:uid/image',
      summary:
        "The product image named in the patch's signed record, fetched through a size-limited, cached proxy from the allowed image hosts (PRODUCT_IMAGE_HOSTS) only.",
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      request: { params: uidParams },
      responses: {
        200: {
          description: 'The image (PNG, JPEG, WebP, GIF or AVIF).',
          contentType: 'image/*',
          schema: z.string().describe('image bytes'),
        },
        404: {
          description:
            'No registration, no image in its record, or an image the proxy does not serve (host not allowed, too large, not a raster image).',
        },
        503: { description: 'The image host is unreachable or failed.' },
      },
      handler: async ({ params }, _req, res) => {
        const patch = await patchModel(deps.mongo).findById(params.uid).lean();
        const url = (patch?.record as { metadata?: { image?: unknown } } | undefined)?.metadata?.image;
        if (typeof url !== 'string') throw new DomainError('NOT_FOUND', `No product image for ${params.uid}.`);
        const image = await deps.images.image(url).catch((err: unknown) => {
          if (!(err instanceof ImageProxyError)) throw err;
          if (err.kind === 'unavailable')
            throw new DomainError('DEPENDENCY_UNAVAILABLE', 'The product image host is unavailable; retry later.');
          throw new DomainError('NOT_FOUND', `No product image is served for ${params.uid}: ${err.message}.`);
        });
        res.setHeader('Cache-Control', 'public, max-age=3600');
        res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
        res.type(image.contentType).send(image.body);
      },
    }),
  ];
}

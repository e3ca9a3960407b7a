import { z } from 'zod';
import { DomainError } from '../../src/errors';
import { renderCertificatePdf } from '../../src/patchPage/pdf';
import { patchViewOf } from '../../src/patchPage/view';
import { UID_PATTERN } from '../../src/registration/ids';
import { verifyPatch, type VerifyDeps } from '../../src/registration/verify';
import { defineRoute, type RouteSpec } from '../routing';
import { pageLanguage, sendPatchPage, type PatchPageDeps } from './patchPage';

/**
 * GET /v1/patches/:uid/certificate: a certificate rendered from a fresh verification (verifyPatch) only. The uid
 * selects the patch; nothing else in the request reaches the certificate (other query parameters are ignored). The
 * HTML certificate is the patch page; the PDF is drawn from the same view of the verification.
 */
export function certificateRoutes(deps: VerifyDeps & { page: PatchPageDeps }): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/patches/:uid/certificate',
      summary:
        'A certificate of the patch rendered from its live verification: the patch page (HTML) by default, PDF with `Accept: application/pdf` or `?format=pdf`. A patch that is not authentic gets a certificate marked with its verdict.',
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      request: {
        params: z.object({ uid: z.string().regex(UID_PATTERN, 'a uid_tag_id') }),
        query: z.object({ format: z.enum(['html', 'pdf']).optional() }),
      },
      responses: {
        200: {
          description:
            'The certificate (text/html with a strict Content-Security-Policy, or application/pdf), in English or French (Accept-Language).',
          contentType: ['text/html', 'application/pdf'],
          schema: z.string(),
        },
        404: { description: 'No registration for this uid.' },
      },
      handler: async ({ params, query }, req, res) => {
        const verification = await verifyPatch(deps, params.uid);
        if (verification.status === 'not_found') throw new DomainError('NOT_FOUND', `No registration for ${params.uid}.`);
        const format = query.format ?? (req.accepts(['text/html', 'application/pdf']) === 'application/pdf' ? 'pdf' : 'html');
        // Like the verdict it shows: a pending or invalid certificate must not be served from a cache later.
        const cacheControl = verification.status === 'authentic' ? 'public, max-age=60' : 'no-store';
        if (format === 'html') return sendPatchPage(req, res, verification, { cacheControl, deps: deps.page });
        const language = pageLanguage(req);
        const pdf = await renderCertificatePdf(patchViewOf(verification), language);
        res.vary('Accept').vary('Accept-Language');
        res.setHeader('Cache-Control', cacheControl);
        res.setHeader('Content-Language', language);
        res.setHeader('Content-Disposition', `inline; filename="${params.uid}.certificate.pdf"`);
        res.type('application/pdf').send(pdf);
      },
    }),
  ];
}

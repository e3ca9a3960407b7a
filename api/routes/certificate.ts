import { z } from 'zod';
import { certificateOf } from '../../src/certificate/certificate';
import { CERTIFICATE_CSP, renderCertificateHtml } from '../../src/certificate/html';
import { renderCertificatePdf } from '../../src/certificate/pdf';
import { DomainError } from '../../src/errors';
import { UID_PATTERN } from '../../src/registration/ids';
import { verifyPatch, type VerifyDeps } from '../../src/registration/verify';
import { defineRoute, type RouteSpec } from '../routing';

/**
 * GET /v1/patches/:uid/certificate: a certificate rendered from a fresh verification (verifyPatch) only. The uid
 * selects the patch; nothing else in the request reaches the certificate (other query parameters are ignored).
 */
export function certificateRoutes(deps: VerifyDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/patches/:uid/certificate',
      summary:
        'A certificate of the patch rendered from its live verification: HTML by default, PDF with `Accept: application/pdf` or `?format=pdf`. A patch that is not authentic gets a certificate marked with its status.',
      tags: ['Verification'],
      access: 'public',
      rateLimit: 'public',
      request: {
        params: z.object({ uid: z.string().regex(UID_PATTERN, 'a uid_tag_id') }),
        query: z.object({ format: z.enum(['html', 'pdf']).optional() }),
      },
      responses: {
        200: {
          description: 'The certificate (text/html with a strict Content-Security-Policy, or application/pdf).',
          contentType: 'text/html',
          schema: z.string(),
        },
        404: { description: 'No registration for this uid.' },
      },
      handler: async ({ params, query }, req, res) => {
        const verification = await verifyPatch(deps, params.uid);
        const certificate = certificateOf(verification);
        if (!certificate) throw new DomainError('NOT_FOUND', `No registration for ${params.uid}.`);
        const format = query.format ?? (req.accepts(['text/html', 'application/pdf']) === 'application/pdf' ? 'pdf' : 'html');
        res.setHeader('Vary', 'Accept');
        // Like the verdict it shows: a pending or invalid certificate must not be served from a cache later.
        res.setHeader('Cache-Control', certificate.status === 'authentic' ? 'public, max-age=60' : 'no-store');
        if (format === 'pdf') {
          const pdf = await renderCertificatePdf(certificate);
          res.setHeader('Content-Disposition', `inline; filename="${certificate.uid}.certificate.pdf"`);
          res.type('application/pdf').send(pdf);
          return;
        }
        res.setHeader('Content-Security-Policy', CERTIFICATE_CSP);
        res.type('text/html; charset=utf-8').send(renderCertificateHtml(certificate));
      },
    }),
  ];
}

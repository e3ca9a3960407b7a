import { createHash } from 'node:crypto';
import { certificateHeadline, certificateRows, type Certificate } from './certificate';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escapes text for an HTML element body or a quoted attribute value. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => HTML_ESCAPES[c]!);
}

const STYLE = [
  'body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:48rem;color:#1b1b1b}',
  'h1{font-size:1.6rem;margin:0 0 .5rem}',
  '.banner{padding:1rem;border-radius:.4rem;margin-bottom:1.5rem;font-weight:600}',
  '.authentic{background:#e6f4ea;border:2px solid #1e7e34}',
  '.pending{background:#fff4e5;border:2px solid #b26a00}',
  '.invalid,.revoked-key{background:#fdecea;border:2px solid #b00020}',
  'table{border-collapse:collapse;width:100%}',
  'th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}',
  'td{font-family:ui-monospace,monospace;word-break:break-all}',
  'footer{margin-top:1.5rem;font-size:.85rem;color:#555}',
].join('');

/**
 * The Content-Security-Policy of an HTML certificate: nothing may load or run; the one inline style block is allowed
 * by its hash. No scripts, no images, no frames, no forms, no base URL.
 */
export const CERTIFICATE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "img-src 'none'",
  "script-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The certificate as a standalone HTML page; every value is escaped. */
export function renderCertificateHtml(certificate: Certificate): string {
  const headline = certificateHeadline(certificate);
  const rows = certificateRows(certificate)
    .map((row) => `<tr data-field="${escapeHtml(row.key)}"><th>${escapeHtml(row.label)}</th><td>${escapeHtml(row.value)}</td></tr>`)
    .join('\n');
  const verifyPath = `/v1/patches/${encodeURIComponent(certificate.uid)}/verify`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(headline)} · ${escapeHtml(certificate.uid)}</title>
<style>${STYLE}</style>
</head>
<body>
<div class="banner ${escapeHtml(certificate.status)}" data-status="${escapeHtml(certificate.status)}">
<h1>${escapeHtml(headline)}</h1>
<div>Status: ${escapeHtml(certificate.status.toUpperCase())}${certificate.reason ? ` (${escapeHtml(certificate.reason)})` : ''}</div>
</div>
<table>
${rows}
</table>
<footer>Issued by PatchProof from a live verification of the issuer-signed record and its anchor on the BSV chain.
Check it yourself: <a href="${escapeHtml(verifyPath)}">${escapeHtml(verifyPath)}</a>.</footer>
</body>
</html>
`;
}

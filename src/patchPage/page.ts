import { createHash } from 'node:crypto';
import { markup, unsafeMarkup, type Markup } from './markup';
import { formatDate, PAGE_MESSAGES, type PageLanguage, type PageMessages } from './messages';
import { explorerUrl, patchFacts, truncateMiddle, type HistoryEntry, type PatchOutcome, type PatchView } from './view';

/** The banner's tone per outcome: only `authentic` is good news, `anchoring` asks to wait, the rest warn. */
const TONE: Record<PatchOutcome, 'good' | 'wait' | 'bad'> = {
  authentic: 'good',
  anchoring: 'wait',
  not_found: 'bad',
  replayed_tap: 'bad',
  invalid_tag: 'bad',
  revoked_key: 'bad',
  tampered: 'bad',
};
const ICON: Record<'good' | 'wait' | 'bad', string> = { good: '✓', wait: '…', bad: '✕' };

// Mobile first: one column, system fonts, nothing to load. Colours meet WCAG AA contrast (4.5:1) on their backgrounds.
const STYLE = [
  ':root{color-scheme:light;--ink:#1b1b1b;--muted:#4a4a4a;--line:#d6d6d6}',
  '*{box-sizing:border-box}',
  'body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#f6f6f4}',
  '.skip{position:absolute;left:-999px}.skip:focus{left:.5rem;top:.5rem;background:#fff;padding:.5rem}',
  'header,main,footer{max-width:44rem;margin:0 auto;padding:0 1rem}',
  'header{padding-top:.75rem;font-weight:700;letter-spacing:.02em}',
  '.verdict{margin:.75rem 0 1rem;padding:1rem;border-radius:.5rem;border:2px solid}',
  '.verdict h1{margin:0 0 .25rem;font-size:1.5rem;line-height:1.25}',
  '.verdict p{margin:.25rem 0 0}',
  '.icon{display:inline-block;width:1.6rem;height:1.6rem;margin-right:.4rem;border-radius:50%;text-align:center;line-height:1.6rem;color:#fff;font-size:1rem;vertical-align:.15rem}',
  '.good{background:#e6f4ea;border-color:#1e6b34}.good .icon{background:#1e6b34}',
  '.wait{background:#fff4e0;border-color:#8a5300}.wait .icon{background:#8a5300}',
  '.bad{background:#fdecee;border-color:#a3001b}.bad .icon{background:#a3001b}',
  '.reason{font-size:.875rem;color:var(--muted);overflow-wrap:anywhere}',
  'section{background:#fff;border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:0 0 1rem}',
  'h2{font-size:1.125rem;margin:0 0 .5rem}',
  '.photo{display:block;max-width:100%;height:auto;max-height:20rem;margin:0 auto .75rem;border-radius:.25rem}',
  '.name{font-size:1.25rem;font-weight:600;margin:0 0 .5rem;overflow-wrap:anywhere}',
  'dl{margin:0;display:grid;grid-template-columns:minmax(7rem,auto) 1fr;gap:.25rem .75rem}',
  'dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}',
  '.mono,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.875rem;overflow-wrap:anywhere}',
  'ol.timeline{list-style:none;margin:0;padding:0 0 0 1rem;border-left:3px solid var(--line)}',
  'ol.timeline li{position:relative;margin:0 0 .75rem;padding-left:.5rem}',
  'ol.timeline li::before{content:"";position:absolute;left:-1.55rem;top:.45rem;width:.8rem;height:.8rem;border-radius:50%;background:#1b4f9c}',
  'a{color:#1b4f9c}',
  '.button{display:inline-block;margin:.5rem .5rem 0 0;padding:.6rem 1rem;border-radius:.4rem;background:#1b4f9c;color:#fff;text-decoration:none;font-weight:600}',
  '.note{font-size:.875rem;color:var(--muted)}',
  'footer{padding-bottom:2rem;font-size:.875rem;color:var(--muted)}',
  '@media (min-width:48rem){dl{grid-template-columns:12rem 1fr}.verdict h1{font-size:1.75rem}}',
].join('');

/**
 * The Content-Security-Policy of the page: nothing runs, nothing loads from another origin. The one inline style
 * block is allowed by its hash; images come from this origin only (the product image proxy).
 */
export const PATCH_PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "img-src 'self'",
  "script-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface PageOptions {
  language: PageLanguage;
  /** Template of an anchor tx's explorer link; null shows the txid only. */
  explorerTxUrl: string | null;
}

const time = (iso: string, language: PageLanguage) => markup`<time datetime="${iso}">${formatDate(iso, language)}</time>`;

function txLink(txid: string, options: PageOptions, m: PageMessages): Markup {
  const href = explorerUrl(options.explorerTxUrl, txid);
  const shown = markup`<span class="mono" title="${txid}">${truncateMiddle(txid, 10)}</span>`;
  return href
    ? markup`<a href="${href}" rel="noopener noreferrer external">${shown}</a> <span class="note">(${m.onExplorer})</span>`
    : shown;
}

function historyItem(entry: HistoryEntry, options: PageOptions, m: PageMessages): Markup {
  return markup`<li data-seq="${entry.seq}">
${entry.at ? markup`<div>${time(entry.at, options.language)}</div>` : ''}
<div>${entry.kind === 'registration' ? m.registered : m.transferred} <span class="mono" title="${entry.owner}">${truncateMiddle(entry.owner)}</span></div>
${entry.txid ? markup`<div class="note">${m.anchorTx}: ${txLink(entry.txid, options, m)}${entry.confirmations !== undefined ? markup` · ${m.confirmations}: ${entry.confirmations}` : ''}</div>` : ''}
</li>`;
}

/** The public page of a patch as a standalone HTML document: no script, no request to another origin. */
export function renderPatchPage(view: PatchView, options: PageOptions): string {
  const m = PAGE_MESSAGES[options.language];
  const verdict = m.verdicts[view.outcome];
  const tone = TONE[view.outcome];
  const facts = patchFacts(view, m, (iso) => formatDate(iso, options.language)).filter((f) => f.key !== 'product.name');
  const showRecord = view.outcome !== 'not_found';
  const page = markup`<!DOCTYPE html>
<html lang="${options.language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<meta name="referrer" content="no-referrer">
<title>${verdict.title} · ${view.product.name ?? view.uid} · PatchProof</title>
<style>${unsafeMarkup(STYLE)}</style>
</head>
<body>
<a class="skip" href="#verdict">${m.skipToVerdict}</a>
<header>PatchProof</header>
<main>
<div id="verdict" class="verdict ${tone}" data-outcome="${view.outcome}" role="status">
<h1><span class="icon" aria-hidden="true">${ICON[tone]}</span>${verdict.title}</h1>
<p>${verdict.meaning}</p>
${view.reason ? markup`<p class="reason">${m.details}: <bdi>${view.reason}</bdi></p>` : ''}
</div>
<section aria-labelledby="product-heading">
<h2 id="product-heading">${m.product}</h2>
${view.product.imagePath ? markup`<img class="photo" src="${view.product.imagePath}" alt="${m.productPhoto(view.product.name)}" width="320" height="320">` : ''}
${view.product.name ? markup`<p class="name" data-field="product.name"><bdi>${view.product.name}</bdi></p>` : ''}
<dl>
${facts.map((f) => markup`<dt>${f.label}</dt><dd data-field="${f.key}"><bdi>${f.value}</bdi></dd>`)}
${showRecord && view.currentOwner ? markup`<dt>${m.fields.currentOwner}</dt><dd data-field="currentOwner" class="mono" title="${view.currentOwner}">${truncateMiddle(view.currentOwner)}</dd>` : ''}
</dl>
</section>
${
  showRecord
    ? markup`<section aria-labelledby="history-heading">
<h2 id="history-heading">${m.history}</h2>
${view.history.length > 0 ? markup`<ol class="timeline">${view.history.map((entry) => historyItem(entry, options, m))}</ol>` : markup`<p>${m.noHistory}</p>`}
${view.pendingTransfer ? markup`<p class="note">${m.pendingTransfer}</p>` : ''}
</section>
<section aria-labelledby="proof-heading">
<h2 id="proof-heading">${m.proof}</h2>
<dl>
${
  view.anchor
    ? markup`<dt>${m.anchorTx}</dt><dd data-field="anchor.txid">${txLink(view.anchor.txid, options, m)}</dd>
<dt>${m.blockHeight}</dt><dd data-field="anchor.blockHeight">${view.anchor.blockHeight ?? m.notMined}</dd>
<dt>${m.confirmations}</dt><dd data-field="anchor.confirmations">${view.anchor.confirmations}</dd>`
    : ''
}
${
  view.issuer
    ? markup`<dt>${m.issuerKey}</dt><dd data-field="issuer.keyIdentifier"><bdi>${view.issuer.keyIdentifier}</bdi></dd>
<dt>${m.issuerSignature}</dt><dd data-field="issuer.signatureValid">${view.issuer.signatureValid ? m.valid : m.invalid}</dd>`
    : ''
}
</dl>
<p>${view.paths.proof ? markup`<a class="button" href="${view.paths.proof}" download data-link="proof">${m.downloadProof}</a>` : ''}${
        view.paths.certificatePdf
          ? markup`<a class="button" href="${view.paths.certificatePdf}" data-link="certificate">${m.certificatePdf}</a>`
          : ''
      }</p>
${view.paths.proof ? markup`<p class="note">${m.offlineNote[0]} <code>npx patchproof verify-proof ${view.uid}.proof.json</code> ${m.offlineNote[1]}</p>` : ''}
</section>`
    : ''
}
</main>
<footer><p>${m.footer}</p></footer>
</body>
</html>
`;
  return page.text;
}

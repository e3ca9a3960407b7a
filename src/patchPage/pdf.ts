import PDFDocument from 'pdfkit';
import { formatDate, PAGE_MESSAGES, type PageLanguage } from './messages';
import { patchFacts, type PatchOutcome, type PatchView } from './view';

const OUTCOME_COLOURS: Record<PatchOutcome, string> = {
  authentic: '#1e6b34',
  anchoring: '#8a5300',
  not_found: '#a3001b',
  replayed_tap: '#a3001b',
  invalid_tag: '#a3001b',
  revoked_key: '#a3001b',
  tampered: '#a3001b',
};

/** The rows of the certificate: the page's facts, then the ownership and proof figures the page shows. */
export function certificateRows(view: PatchView, language: PageLanguage): { key: string; label: string; value: string }[] {
  const m = PAGE_MESSAGES[language];
  const rows = patchFacts(view, m, (iso) => formatDate(iso, language));
  if (view.currentOwner) rows.push({ key: 'currentOwner', label: m.fields.currentOwner, value: view.currentOwner });
  view.history.forEach((entry) =>
    rows.push({
      key: `history.${entry.seq}`,
      label: entry.kind === 'registration' ? m.registered : m.transferred,
      value: [entry.owner, entry.at && formatDate(entry.at, language), entry.txid].filter(Boolean).join('\n'),
    }),
  );
  if (view.anchor) {
    rows.push(
      { key: 'anchor.txid', label: m.anchorTx, value: view.anchor.txid },
      {
        key: 'anchor.blockHeight',
        label: m.blockHeight,
        value: view.anchor.blockHeight === null ? m.notMined : String(view.anchor.blockHeight),
      },
      { key: 'anchor.confirmations', label: m.confirmations, value: String(view.anchor.confirmations) },
    );
  }
  if (view.issuer) {
    rows.push(
      { key: 'issuer.keyIdentifier', label: m.issuerKey, value: view.issuer.keyIdentifier },
      { key: 'issuer.signatureValid', label: m.issuerSignature, value: view.issuer.signatureValid ? m.valid : m.invalid },
    );
  }
  if (view.reason) rows.push({ key: 'reason', label: m.details, value: view.reason });
  return rows;
}

/**
 * The certificate as a PDF (pdfkit, standard fonts, nothing fetched), from the same view as the page. Text is
 * drawn, never interpreted, so values need no escaping; the creation date is the registration time so the same
 * verdict gives the same bytes apart from live figures such as confirmations.
 */
export function renderCertificatePdf(view: PatchView, language: PageLanguage = 'en'): Promise<Buffer> {
  const verdict = PAGE_MESSAGES[language].verdicts[view.outcome];
  const created = view.registeredAt ? new Date(view.registeredAt) : new Date(0);
  const doc = new PDFDocument({
    size: 'A4',
    margin: 50,
    info: {
      Title: `${verdict.title} - ${view.uid}`,
      Subject: `PatchProof certificate for ${view.uid}: ${view.outcome}`,
      Author: 'PatchProof',
      CreationDate: created,
    },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (chunk: Buffer) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const colour = OUTCOME_COLOURS[view.outcome];
  const width = doc.page.width - 124;
  doc.fillColor(colour).font('Helvetica-Bold').fontSize(20).text(verdict.title, 62, 62, { width });
  doc.font('Helvetica').fontSize(11).text(verdict.meaning, { width });
  const boxBottom = doc.y + 12;
  doc
    .rect(50, 50, doc.page.width - 100, boxBottom - 50)
    .lineWidth(2)
    .stroke(colour);
  doc.fillColor('#1b1b1b');

  let y = boxBottom + 20;
  for (const row of certificateRows(view, language)) {
    doc.font('Helvetica-Bold').fontSize(10).text(row.label, 50, y, { width: 140 });
    doc
      .font('Courier')
      .fontSize(9)
      .text(row.value, 200, y, { width: doc.page.width - 250 });
    y = Math.max(doc.y, y + 14) + 6;
  }
  doc
    .font('Helvetica')
    .fontSize(8)
    .fillColor('#555555')
    .text(`${PAGE_MESSAGES[language].footer} ${view.paths.verify}`, 50, y + 20, { width: doc.page.width - 100 });
  doc.end();
  return done;
}

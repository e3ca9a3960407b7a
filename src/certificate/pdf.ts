import PDFDocument from 'pdfkit';
import { certificateHeadline, certificateRows, type Certificate } from './certificate';

const STATUS_COLOURS: Record<Certificate['status'], string> = {
  authentic: '#1e7e34',
  pending: '#b26a00',
  invalid: '#b00020',
  'revoked-key': '#b00020',
};

/**
 * The certificate as a one-page PDF (pdfkit, standard fonts, nothing fetched). Text is drawn, never interpreted,
 * so values need no escaping; the creation date is the registration time so the same verdict gives the same bytes
 * apart from live figures such as confirmations.
 */
export function renderCertificatePdf(certificate: Certificate): Promise<Buffer> {
  const headline = certificateHeadline(certificate);
  const created = certificate.registeredAt ? new Date(certificate.registeredAt) : new Date(0);
  const doc = new PDFDocument({
    size: 'A4',
    margin: 50,
    info: {
      Title: `${headline} - ${certificate.uid}`,
      Subject: `PatchProof certificate for ${certificate.uid}: ${certificate.status}`,
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

  const colour = STATUS_COLOURS[certificate.status];
  doc
    .rect(50, 50, doc.page.width - 100, 70)
    .lineWidth(2)
    .stroke(colour);
  doc
    .fillColor(colour)
    .font('Helvetica-Bold')
    .fontSize(20)
    .text(headline, 62, 62, { width: doc.page.width - 124 });
  doc
    .font('Helvetica')
    .fontSize(11)
    .text(`Status: ${certificate.status.toUpperCase()}${certificate.reason ? ` (${certificate.reason})` : ''}`, {
      width: doc.page.width - 124,
    });
  doc.fillColor('#1b1b1b').moveDown(2);

  let y = Math.max(doc.y, 140);
  for (const row of certificateRows(certificate)) {
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
    .text(
      `Issued by PatchProof from a live verification of the issuer-signed record and its anchor on the BSV chain. ` +
        `Check it yourself: GET /v1/patches/${certificate.uid}/verify`,
      50,
      y + 20,
      { width: doc.page.width - 100 },
    );
  doc.end();
  return done;
}

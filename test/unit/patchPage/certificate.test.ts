import { createHash } from 'node:crypto';
import { certificateOf } from '../../../src/certificate/certificate';
import { CERTIFICATE_CSP, escapeHtml, renderCertificateHtml } from '../../../src/certificate/html';
import { renderCertificatePdf } from '../../../src/certificate/pdf';
import type { Verification } from '../../../src/registration/verify';

const hostile = `<img src=x onerror="alert('x')">&\``;

const verification = (overrides: Partial<Verification> = {}): Verification => ({
  uid: 'PP-0042',
  status: 'authentic',
  record: {
    v: 1,
    kind: 'patchproof.registration',
    uid: 'PP-0042',
    product: { name: hostile, sku: 'FJ-01', serial_number: 'SN-1' },
    metadata: {},
    initialOwner: 'mOwner',
    registeredAt: '2026-11-01T10:00:00Z',
  },
  recordHash: 'ab'.repeat(32),
  issuerSignature: { valid: true, keyIdentifier: 'issuer', pubKeyHex: '02'.padEnd(66, 'c'), signatureDerHex: '30' },
  ownership: {
    currentOwner: 'mOwner2',
    chain: [
      { kind: 'registration', seq: 0, owner: 'mOwner', txid: 'aa'.repeat(32) },
      { kind: 'transfer', seq: 1, owner: 'mOwner2', txid: 'bb'.repeat(32) },
    ],
  },
  anchor: { txid: 'aa'.repeat(32), vout: 0, leaf: 'cc', index: 0, count: 1, path: [], root: 'cc', blockHeight: 812, confirmations: 6 },
  ...overrides,
});

describe('certificate', () => {
  it('states what the verification proves and nothing else', () => {
    expect(certificateOf(verification())).toEqual({
      uid: 'PP-0042',
      status: 'authentic',
      product: [
        { field: 'name', label: 'Product', value: hostile },
        { field: 'sku', label: 'SKU', value: 'FJ-01' },
        { field: 'serial_number', label: 'Serial number', value: 'SN-1' },
      ],
      registeredAt: '2026-11-01T10:00:00Z',
      currentOwner: 'mOwner2',
      ownershipChainLength: 2,
      anchor: { txid: 'aa'.repeat(32), blockHeight: 812, confirmations: 6 },
      issuer: { keyIdentifier: 'issuer', pubKeyHex: '02'.padEnd(66, 'c'), signatureValid: true },
    });
    expect(certificateOf({ uid: 'PP-NONE', status: 'not_found' })).toBeNull();
  });

  it('escapes every character that could open markup or an attribute', () => {
    expect(escapeHtml(`<a href="x" title='y'>&\`</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&#96;&lt;/a&gt;');
    const html = renderCertificateHtml(certificateOf(verification())!);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('onerror="');
    expect(html).toContain('&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;&#96;');
  });

  it('allows exactly its own inline style under a CSP that forbids everything else', () => {
    const html = renderCertificateHtml(certificateOf(verification())!);
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(CERTIFICATE_CSP).toContain(`style-src 'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(CERTIFICATE_CSP).toMatch(/^default-src 'none'/);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|<form/);
  });

  it('marks a certificate that is not authentic with its status and reason', () => {
    const html = renderCertificateHtml(certificateOf(verification({ status: 'pending', reason: 'awaiting 1 confirmation' }))!);
    expect(html).toContain('data-status="pending"');
    expect(html).toContain('NOT YET VERIFIED');
    expect(html).toContain('awaiting 1 confirmation');
    expect(html).not.toContain('Certificate of authenticity');
  });

  it('renders a PDF whose metadata names the patch and its status', async () => {
    const pdf = await renderCertificatePdf(certificateOf(verification({ status: 'invalid', reason: 'tampered' }))!);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.toString('latin1')).toContain('(PatchProof certificate for PP-0042: invalid)');
  });
});

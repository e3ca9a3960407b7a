import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';
import { ImageProxy, ImageProxyError, isPublicAddress } from '../../../src/patchPage/imageProxy';
import { escapeHtml, markup } from '../../../src/patchPage/markup';
import { PAGE_LANGUAGES, PAGE_MESSAGES } from '../../../src/patchPage/messages';
import { PATCH_PAGE_CSP, renderPatchPage } from '../../../src/patchPage/page';
import { certificateRows, renderCertificatePdf } from '../../../src/patchPage/pdf';
import { qrPng, qrSvg } from '../../../src/patchPage/qr';
import { outcomeOf, PATCH_OUTCOMES, patchViewOf, type PatchOutcome, type TapVerdict } from '../../../src/patchPage/view';
import type { Verification } from '../../../src/registration/verify';

const hostile = `<script>alert("x")</script> & 'jacket' \`x\` مرحبا بالعالم`;

const verification = (overrides: Partial<Verification> = {}): Verification => ({
  uid: 'PP-0042',
  status: 'authentic',
  record: {
    v: 1,
    kind: 'patchproof.registration',
    uid: 'PP-0042',
    product: { name: hostile, brand: 'Maison <b>Test</b>', sku: 'FJ-01', serial_number: 'SN-1' },
    metadata: { image: 'https://img.example.com/p/42.png' },
    initialOwner: 'mOwnerAddressAAAAAAAAAAAAAAAAAAA1',
    registeredAt: '2026-11-01T10:00:00Z',
  },
  recordHash: 'ab'.repeat(32),
  issuerSignature: { valid: true, keyIdentifier: 'issuer', pubKeyHex: '02'.padEnd(66, 'c'), signatureDerHex: '30' },
  ownership: {
    currentOwner: 'mOwnerAddressBBBBBBBBBBBBBBBBBBB2',
    chain: [
      { kind: 'registration', seq: 0, owner: 'mOwnerAddressAAAAAAAAAAAAAAAAAAA1', txid: 'aa'.repeat(32) },
      {
        kind: 'transfer',
        seq: 1,
        owner: 'mOwnerAddressBBBBBBBBBBBBBBBBBBB2',
        txid: 'bb'.repeat(32),
        record: { transferredAt: '2026-11-20T08:30:00Z' },
        anchor: {
          txid: 'bb'.repeat(32),
          vout: 0,
          leaf: 'cc',
          index: 0,
          count: 1,
          path: [],
          root: 'cc',
          blockHeight: 900,
          confirmations: 3,
        },
      },
    ],
  },
  anchor: { txid: 'aa'.repeat(32), vout: 0, leaf: 'cc', index: 0, count: 1, path: [], root: 'cc', blockHeight: 812, confirmations: 91 },
  ...overrides,
});

const EXPLORER = 'https://explorer.example/tx/{txid}';
const allowAll = { imageAllowed: () => true };

/** A verification (and tap verdict) that yields each outcome. */
const CASES: Record<PatchOutcome, { verification: Verification; tap?: TapVerdict }> = {
  authentic: { verification: verification() },
  anchoring: { verification: verification({ status: 'pending', reason: 'registration is anchoring', anchor: undefined }) },
  not_found: { verification: { uid: 'PP-NONE', status: 'not_found' } },
  replayed_tap: { verification: verification(), tap: 'replayed' },
  invalid_tag: { verification: verification(), tap: 'invalid-tag' },
  revoked_key: {
    verification: verification({ status: 'revoked-key', reason: 'signed by issuer key issuer, revoked at 2026-11-02T00:00:00Z' }),
  },
  tampered: { verification: verification({ status: 'invalid', reason: 'the record no longer hashes to its anchored leaf' }) },
};

describe('patch view', () => {
  it('maps every verification status and tap verdict to the outcome the reader sees', () => {
    expect(outcomeOf({ status: 'authentic' })).toBe('authentic');
    expect(outcomeOf({ status: 'pending' })).toBe('anchoring');
    expect(outcomeOf({ status: 'not_found' })).toBe('not_found');
    expect(outcomeOf({ status: 'invalid' })).toBe('tampered');
    expect(outcomeOf({ status: 'revoked-key' })).toBe('revoked_key');
    // A copied or forged tag link outranks a genuine record.
    expect(outcomeOf({ status: 'authentic' }, 'replayed')).toBe('replayed_tap');
    expect(outcomeOf({ status: 'authentic' }, 'invalid-tag')).toBe('invalid_tag');
    expect(outcomeOf({ status: 'authentic' }, 'fresh')).toBe('authentic');
    for (const [outcome, c] of Object.entries(CASES))
      expect(patchViewOf(c.verification, { ...(c.tap && { tap: c.tap }) }).outcome).toBe(outcome);
  });

  it('states the product, the history with dates and confirmations, and the proof links of an anchored patch', () => {
    const view = patchViewOf(verification(), allowAll);
    expect(view.product).toEqual({
      name: hostile,
      brand: 'Maison <b>Test</b>',
      details: [
        { field: 'sku', value: 'FJ-01' },
        { field: 'serial_number', value: 'SN-1' },
      ],
      imagePath: '/v1/patches/PP-0042/image',
    });
    expect(view.history).toEqual([
      {
        kind: 'registration',
        seq: 0,
        owner: 'mOwnerAddressAAAAAAAAAAAAAAAAAAA1',
        at: '2026-11-01T10:00:00Z',
        txid: 'aa'.repeat(32),
        confirmations: 91,
      },
      {
        kind: 'transfer',
        seq: 1,
        owner: 'mOwnerAddressBBBBBBBBBBBBBBBBBBB2',
        at: '2026-11-20T08:30:00Z',
        txid: 'bb'.repeat(32),
        confirmations: 3,
      },
    ]);
    expect(view.paths).toEqual({
      page: '/p/PP-0042',
      verify: '/v1/patches/PP-0042/verify',
      certificatePdf: '/v1/patches/PP-0042/certificate?format=pdf',
      proof: '/v1/patches/PP-0042/proof',
    });
    // No proof bundle exists before anchoring; no image unless the proxy would fetch it.
    expect(patchViewOf(CASES.anchoring.verification).paths.proof).toBeUndefined();
    expect(patchViewOf(verification(), { imageAllowed: () => false }).product.imagePath).toBeUndefined();
  });
});

describe('patch page', () => {
  it.each(PATCH_OUTCOMES)('renders the %s verdict with its meaning in every shipped language', (outcome) => {
    const c = CASES[outcome];
    for (const language of PAGE_LANGUAGES) {
      const view = patchViewOf(c.verification, { ...(c.tap && { tap: c.tap }), ...allowAll });
      const page = renderPatchPage(view, { language, explorerTxUrl: EXPLORER });
      const verdict = PAGE_MESSAGES[language].verdicts[outcome];
      expect(page).toContain(`<html lang="${language}">`);
      expect(page).toContain(`data-outcome="${outcome}"`);
      expect(page).toContain(escapeHtml(verdict.title));
      expect(page).toContain(escapeHtml(verdict.meaning));
    }
  });

  it('renders a hostile product name, quotes and right-to-left text as text, never as markup', () => {
    const page = renderPatchPage(patchViewOf(verification(), allowAll), { language: 'en', explorerTxUrl: EXPLORER });
    expect(page).not.toMatch(/<script|<b>/i);
    expect(page).toContain('<bdi>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;jacket&#39; &#96;x&#96; مرحبا بالعالم</bdi>');
    expect(page).toContain('Maison &lt;b&gt;Test&lt;/b&gt;');
    // The image's alternative text is an attribute: quotes must not end it.
    expect(page).toContain('alt="Photo of &lt;script&gt;alert(&quot;x&quot;)');
    expect(markup`<a title="${'" onmouseover="x'}">${['<i>', markup`<b>ok</b>`]}</a>`.text).toBe(
      '<a title="&quot; onmouseover=&quot;x">&lt;i&gt;<b>ok</b></a>',
    );
  });

  it('links the anchor tx on the configured explorer, or shows it unlinked without one', () => {
    const view = patchViewOf(verification(), allowAll);
    expect(renderPatchPage(view, { language: 'en', explorerTxUrl: EXPLORER })).toContain(
      `href="https://explorer.example/tx/${'aa'.repeat(32)}"`,
    );
    expect(renderPatchPage(view, { language: 'en', explorerTxUrl: null })).not.toContain('explorer.example');
  });

  it('stays under 30 KB with a long ownership history, and its CSP allows only its own style and same-origin images', () => {
    const chain = Array.from({ length: 30 }, (_, seq) => ({
      kind: seq === 0 ? ('registration' as const) : ('transfer' as const),
      seq,
      owner: `mOwner${seq}`.padEnd(34, 'X'),
      txid: seq.toString(16).padStart(64, 'a'),
      record: { transferredAt: '2026-11-20T08:30:00Z' },
    }));
    const page = renderPatchPage(patchViewOf(verification({ ownership: { currentOwner: 'mOwner29', chain } }), allowAll), {
      language: 'fr',
      explorerTxUrl: EXPLORER,
    });
    expect(Buffer.byteLength(page)).toBeLessThan(30 * 1024);
    const style = /<style>([\s\S]*?)<\/style>/.exec(page)![1]!;
    expect(PATCH_PAGE_CSP).toContain(`style-src 'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(PATCH_PAGE_CSP).toMatch(/^default-src 'none'/);
    expect(PATCH_PAGE_CSP).toContain("img-src 'self'");
    expect(page).not.toMatch(/<script|<link|<iframe|<form|src="http/);
  });

  it('draws the PDF from the same view: the same verdict and facts as the page', async () => {
    const view = patchViewOf(CASES.tampered.verification, allowAll);
    const rows = certificateRows(view, 'en');
    expect(rows.map((r) => r.key)).toEqual([
      'product.name',
      'product.brand',
      'uid',
      'product.sku',
      'product.serial_number',
      'registeredAt',
      'currentOwner',
      'history.0',
      'history.1',
      'anchor.txid',
      'anchor.blockHeight',
      'anchor.confirmations',
      'issuer.keyIdentifier',
      'issuer.signatureValid',
      'reason',
    ]);
    const page = renderPatchPage(view, { language: 'en', explorerTxUrl: null });
    for (const key of ['product.brand', 'uid', 'product.sku', 'registeredAt', 'anchor.blockHeight', 'anchor.confirmations', 'reason']) {
      expect(page).toContain(escapeHtml(rows.find((r) => r.key === key)!.value));
    }
    const pdf = await renderCertificatePdf(view);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.toString('latin1')).toContain('(PatchProof certificate for PP-0042: tampered)');
    expect(pdf.toString('latin1')).toContain(`(${PAGE_MESSAGES.en.verdicts.tampered.title} - PP-0042)`);
  });
});

describe('QR codes', () => {
  it('encode the page URL, as SVG and as a PNG of the asked size', async () => {
    const url = 'https://verify.example/p/PP-0042';
    const png = PNG.sync.read(await qrPng(url, 256));
    expect(png.width).toBe(256);
    expect(jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data).toBe(url);
    const svg = await qrSvg(url);
    expect(svg).toMatch(/^<svg [^>]*viewBox="0 0 \d+ \d+"/);
    expect(svg).not.toMatch(/<script|href/);
  });
});

describe('product image proxy', () => {
  let server: Server;
  let origin: string;
  const png = Buffer.from('89504e470d0a1a0a', 'hex');
  let hits = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === '/ok.png') res.writeHead(200, { 'content-type': 'image/png' }).end(png);
      else if (req.url === '/big.png') res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(5_000));
      else if (req.url === '/page.svg') res.writeHead(200, { 'content-type': 'image/svg+xml' }).end('<svg/>');
      else if (req.url === '/moved') res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const local = () => new ImageProxy({ hosts: [origin], maxBytes: 1_000, cacheTtlMs: 60_000, allowLocal: true });
  const kindOf = (p: Promise<unknown>) =>
    p.then(
      () => 'served',
      (err: unknown) => (err instanceof ImageProxyError ? err.kind : String(err)),
    );

  it('fetches an allowed image once and keeps it', async () => {
    const proxy = local();
    const before = hits;
    expect(await proxy.image(`http://${origin}/ok.png`)).toEqual({ body: png, contentType: 'image/png' });
    await proxy.image(`http://${origin}/ok.png`);
    expect(hits - before).toBe(1);
  });

  it('refuses other hosts, credentials, too large, non-raster and redirected images', async () => {
    const proxy = local();
    expect(proxy.allows(`http://${origin}/ok.png`)).toBe(true);
    expect(proxy.allows('http://elsewhere.example/ok.png')).toBe(false);
    expect(proxy.allows(`http://user:pw@${origin}/ok.png`)).toBe(false);
    expect(await kindOf(proxy.image(`http://${origin}/big.png`))).toBe('too-large');
    expect(await kindOf(proxy.image(`http://${origin}/page.svg`))).toBe('not-an-image');
    expect(await kindOf(proxy.image(`http://${origin}/moved`))).toBe('unavailable');
  });

  it('outside dev, fetches over https from public addresses only, refusing before any byte is sent', async () => {
    const strict = new ImageProxy({ hosts: [origin, 'localhost'], maxBytes: 1_000, cacheTtlMs: 0, allowLocal: false });
    expect(strict.allows(`http://${origin}/ok.png`)).toBe(false);
    const before = hits;
    // Allowed by name but not public: refused by address literal, and by the lookup for a name.
    expect(await kindOf(strict.image(`https://${origin}/ok.png`))).toBe('not-allowed');
    expect(await kindOf(strict.image('https://localhost/ok.png'))).toBe('not-allowed');
    expect(hits).toBe(before);
  });

  it('treats loopback, private, link-local and mapped addresses as non-public', () => {
    const nonPublic = [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.9',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
    ];
    for (const address of nonPublic) expect([address, isPublicAddress(address)]).toEqual([address, false]);
    for (const address of ['93.184.216.34', '2606:4700::6810:85e5']) expect([address, isPublicAddress(address)]).toEqual([address, true]);
  });
});

import { inflateSync } from 'node:zlib';
import { PublicKey } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { patchModel } from '../../../src/registration/models';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

/** The text a PDF draws: its content streams inflated, the hex strings of TJ/Tj operators decoded. */
function pdfText(pdf: Buffer): string {
  const raw = pdf.toString('latin1');
  const parts: string[] = [];
  for (const match of raw.matchAll(/stream\r?\n([\s\S]*?)\r?\nendstream/g)) {
    let content: string;
    try {
      content = inflateSync(Buffer.from(match[1]!, 'latin1')).toString('latin1');
    } catch {
      continue;
    }
    for (const op of content.matchAll(/\[([^\]]*)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj/g)) {
      const hexes = op[1] !== undefined ? [...op[1].matchAll(/<([0-9a-fA-F]*)>/g)].map((m) => m[1]!) : [op[2]!];
      parts.push(hexes.map((h) => Buffer.from(h, 'hex').toString('latin1')).join(''));
    }
  }
  return parts.join('\n');
}

describe('certificate of a registered patch, rendered from its live verification', () => {
  let stack: PoolStack;
  let api: Listening;
  let client: ReturnType<typeof apiClient>;
  let owner: string;
  const uid = 'CERT-0001';
  const hostileName = `<script>alert("x")</script> & 'jacket'`;

  beforeAll(async () => {
    stack = await startPoolStack(
      {
        FEE_PER_KB: '100',
        ANCHOR_CONFIRMATIONS: '1',
        ANCHOR_BATCH_MAX_WAIT_SECONDS: '1',
        PUBLIC_API_MAX: '30',
        PUBLIC_API_WINDOW_MS: '600000',
      },
      { blockIntervalMs: 300 },
    );
    api = await listen(createApp(stack.deps));
    client = apiClient(api.baseUrl, stack.deps.config.auth.apiKey);
    owner = PublicKey.fromString(stack.kms.keys.ensure('cert-owner').pubKeyHex).toAddress('testnet');
    await fundAndSyncPool(stack, 2);
    const body = registrationBody(uid, owner);
    const accepted = await client.adminPost('/v1/patches', { ...body, product: { ...body.product, name: hostileName } });
    expect(accepted.status).toBe(202);
    expect(await client.waitDone(accepted.body.statusUrl as string)).toMatchObject({ state: 'completed', status: 'anchored' });
  });
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const fetchCertificate = async (query = '', headers: Record<string, string> = {}) => {
    const res = await fetch(`${api.baseUrl}/v1/patches/${uid}/certificate${query}`, { headers });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  };
  // Blocks keep coming every 300 ms: only the confirmation counts may change between two renderings.
  const withoutConfirmations = (html: string) => html.replace(/(Confirmations: |data-field="anchor\.confirmations">)\d+/g, '$1N');

  it('renders the patch page as the HTML certificate, every value escaped, under a strict CSP', async () => {
    const verification = (await client.get(`/v1/patches/${uid}/verify`)).body as {
      status: string;
      anchor: { txid: string; blockHeight: number };
    };
    expect(verification.status).toBe('authentic');

    const res = await fetchCertificate();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html; charset=utf-8/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'none'");
    expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
    const html = res.body.toString('utf8');
    expect(html).toContain('data-outcome="authentic"');
    expect(html).toContain('Authentic');
    expect(html).toContain(`data-field="uid"><bdi>${uid}</bdi>`);
    expect(html).toContain(`data-field="currentOwner" class="mono" title="${owner}"`);
    expect(html).toContain(`title="${verification.anchor.txid}"`);
    expect(html).toContain(`data-field="anchor.blockHeight">${verification.anchor.blockHeight}<`);
    // One ownership record: the registration.
    expect(html).toContain('<li data-seq="0">');
    expect(html).not.toContain('<li data-seq="1">');
    // The product name arrives escaped: no markup of the client's reaches the page.
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;jacket&#39;');
    expect(html).not.toMatch(/<script/i);
  });

  it('ignores query parameters other than format: they change nothing on the certificate', async () => {
    const plain = (await fetchCertificate()).body.toString('utf8');
    const tampered = await fetchCertificate(`?owner=evil&status=invalid&uid=OTHER&name=${encodeURIComponent('<b>x</b>')}`);
    expect(tampered.status).toBe(200);
    const html = tampered.body.toString('utf8');
    expect(withoutConfirmations(html)).toBe(withoutConfirmations(plain));
    expect(html).not.toContain('evil');
    expect(html).not.toContain('OTHER');

    const pdf = await fetchCertificate('?format=pdf&owner=evil&uid=OTHER');
    const text = pdfText(pdf.body);
    expect(text).toContain(owner);
    expect(text).not.toContain('evil');
    expect(text).not.toContain('OTHER');
  });

  it('renders a PDF for Accept: application/pdf and for ?format=pdf', async () => {
    for (const res of [await fetchCertificate('', { accept: 'application/pdf' }), await fetchCertificate('?format=pdf')]) {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/pdf');
      expect(res.body.subarray(0, 5).toString('latin1')).toBe('%PDF-');
      expect(res.body.toString('latin1')).toContain(`(Authentic - ${uid})`);
      const text = pdfText(res.body);
      expect(text).toContain(uid);
      expect(text).toContain(hostileName);
      expect(text).toContain('Authentic');
    }
    // A browser's Accept header gets the HTML page.
    const browser = await fetchCertificate('', { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
    expect(browser.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('marks a patch that no longer verifies as not authentic, and answers 404 for an unknown uid', async () => {
    const patches = patchModel(stack.deps.mongo);
    const original = (await patches.findById(uid).lean())!;
    try {
      await patches.updateOne({ _id: uid }, { $set: { 'record.product.sku': 'FAKE' } });
      const res = await fetchCertificate();
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const html = res.body.toString('utf8');
      expect(html).toContain('data-outcome="tampered"');
      expect(html).toContain('Not authentic: record fails verification');
      expect(html).not.toContain('data-outcome="authentic"');
      expect(html).toMatch(/<p class="reason">Technical detail: <bdi>[^<]*no longer hashes/);
      const text = pdfText((await fetchCertificate('?format=pdf')).body);
      expect(text).toContain('Not authentic: record fails verification');
      expect(text).toContain('no longer hashes');
    } finally {
      await patches.replaceOne({ _id: uid }, original);
    }
    const missing = await fetch(`${api.baseUrl}/v1/patches/CERT-NOPE/certificate`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect((await fetch(`${api.baseUrl}/v1/patches/CERT-0001/certificate?format=docx`)).status).toBe(400);
    expect((await fetch(`${api.baseUrl}/v1/patches/bad%20uid/certificate`)).status).toBe(400);
  });

  it('is rate limited with the public limit, like verification', async () => {
    let limited: Response | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await fetch(`${api.baseUrl}/v1/patches/${uid}/certificate?format=pdf`);
      if (res.status === 429) limited = res;
      else await res.arrayBuffer();
    }
    expect(limited?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await limited!.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
  });
});

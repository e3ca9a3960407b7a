import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PublicKey } from '@bsv/sdk';
import jsQR from 'jsqr';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { createApp } from '../../../api/app';
import { createTagSimulator } from '../../../ops/stand-ins/tag-simulator/server';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import { PAGE_MESSAGES } from '../../../src/patchPage/messages';
import { PATCH_PAGE_CSP, renderPatchPage } from '../../../src/patchPage/page';
import { patchViewOf, type PatchOutcome, type TapVerdict } from '../../../src/patchPage/view';
import { patchModel } from '../../../src/registration/models';
import type { Verification } from '../../../src/registration/verify';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { describeWithTool, requireTool } from '../../support/requiredTools';
import { TEST_ENV } from '../../support/testEnv';

const CHROMIUM = process.env[TEST_ENV.chromium];
const SCREENSHOTS = path.resolve(__dirname, '..', '..', '..', 'test-output', 'consumer-page');
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const EXPLORER = 'https://explorer.invalid/tx/{txid}';

const UID = 'PAGE-0001';
const BARE_UID = 'PAGE-0002';
/** The NFC tag bound to UID, simulated: its taps open the page through the tap route. */
const TAG_UID = '04C0FFEE0A0B0C';
const hostileName = `<script>alert("x")</script> "Veste" d'atelier · سترة العمل`;

/** A small red PNG the local "brand image host" serves. */
function productPng(): Buffer {
  const png = new PNG({ width: 64, height: 64 });
  for (let i = 0; i < png.data.length; i += 4) png.data.set([200, 30, 40, 255], i);
  return PNG.sync.write(png);
}

describe('patch page over HTTP: content negotiation, QR codes, product image', () => {
  let stack: PoolStack;
  let api: Listening;
  let imageHost: Server;
  let imageRequests = 0;
  let owner: string;
  let tags: ReturnType<typeof createTagSimulator>;
  const image = productPng();

  beforeAll(async () => {
    imageHost = createServer((req, res) => {
      imageRequests++;
      if (req.url === '/jacket.png') res.writeHead(200, { 'content-type': 'image/png' }).end(image);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => imageHost.listen(0, '127.0.0.1', resolve));
    const imageOrigin = `127.0.0.1:${(imageHost.address() as AddressInfo).port}`;
    stack = await startPoolStack(
      {
        FEE_PER_KB: '100',
        ANCHOR_CONFIRMATIONS: '1',
        ANCHOR_BATCH_MAX_WAIT_SECONDS: '1',
        PUBLIC_API_MAX: '1000',
        // Each page below is a fresh verification, so a verdict changed in the database shows at once.
        VERIFY_CACHE_SECONDS: '0',
        EXPLORER_TX_URL: EXPLORER,
        PRODUCT_IMAGE_HOSTS: imageOrigin,
        PRODUCT_IMAGE_ALLOW_LOCAL: 'true',
      },
      { blockIntervalMs: 300 },
    );
    api = await listen(createApp(stack.deps));
    const client = apiClient(api.baseUrl, stack.deps.config.auth.apiKey);
    const tagSettings = stack.deps.config.tags;
    tags = createTagSimulator({
      kms: chainClientsFromConfig(stack.deps.config).kms,
      keyIdentifier: tagSettings.keyIdentifier,
      template: {
        baseUrl: `${api.baseUrl}/t`,
        piccDataParam: tagSettings.piccDataParam,
        cmacParam: tagSettings.cmacParam,
        macInput: tagSettings.macInput,
      },
    });
    owner = PublicKey.fromString(stack.kms.keys.ensure('page-owner').pubKeyHex).toAddress('testnet');
    await fundAndSyncPool(stack, 3);
    const body = registrationBody(UID, owner);
    const bare = registrationBody(BARE_UID, owner);
    for (const accepted of [
      await client.adminPost('/v1/patches', {
        ...body,
        product: { ...body.product, name: hostileName, brand: 'Atelier Nord' },
        metadata: { ...body.metadata, image: `http://${imageOrigin}/jacket.png` },
        tag: { type: 'ntag424', uid: TAG_UID },
      }),
      await client.adminPost('/v1/patches', { product: { uid_tag_id: BARE_UID }, auth: bare.auth }),
    ]) {
      expect(accepted.status).toBe(202);
      expect(await client.waitDone(accepted.body.statusUrl as string)).toMatchObject({ state: 'completed', status: 'anchored' });
    }
  });
  afterAll(async () => {
    await api?.close();
    await stack?.close();
    await new Promise((resolve) => imageHost?.close(resolve));
  });

  const get = (urlPath: string, headers: Record<string, string> = {}) => fetch(`${api.baseUrl}${urlPath}`, { headers });

  it('keeps JSON the default on the verify URL and serves the page to a browser, varying on Accept and Accept-Language', async () => {
    const json = await get(`/v1/patches/${UID}/verify`);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(json.headers.get('vary')).toMatch(/\bAccept\b/);
    expect(((await json.json()) as Verification).status).toBe('authentic');
    expect((await get(`/v1/patches/${UID}/verify`, { accept: '*/*' })).headers.get('content-type')).toMatch(/^application\/json/);

    const browserAccept = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
    for (const urlPath of [`/v1/patches/${UID}/verify`, `/p/${UID}`]) {
      const page = await get(urlPath, { accept: browserAccept, 'accept-language': 'fr-CH, fr;q=0.9, en;q=0.5' });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('vary')).toMatch(/Accept, Accept-Language/);
      expect(page.headers.get('content-language')).toBe('fr');
      expect(page.headers.get('content-security-policy')).toBe(PATCH_PAGE_CSP);
      expect(page.headers.get('cache-control')).toMatch(/^public, max-age=\d+/);
      const html = await page.text();
      expect(html).toContain('data-outcome="authentic"');
      expect(html).toContain(PAGE_MESSAGES.fr.verdicts.authentic.title);
      expect(Buffer.byteLength(html)).toBeLessThan(30 * 1024);
      expect(page.headers.get('etag')).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
    }
    const unknown = await get('/p/PAGE-NOPE', { 'accept-language': 'de' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-language')).toBe('en');
    expect(await unknown.text()).toContain('data-outcome="not_found"');
    expect((await get('/p/bad%20uid')).status).toBe(400);
  });

  it('prints QR codes that hold the page URL, as SVG and PNG', async () => {
    const svg = await get(`/v1/patches/${UID}/qr.svg`);
    expect(svg.status).toBe(200);
    expect(svg.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(await svg.text()).toMatch(/^<svg /);
    const res = await get(`/v1/patches/${UID}/qr.png?size=300`);
    expect(res.headers.get('content-type')).toBe('image/png');
    const png = PNG.sync.read(Buffer.from(await res.arrayBuffer()));
    expect(png.width).toBe(300);
    expect(jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data).toBe(`${api.baseUrl}/p/${UID}`);
    expect((await get(`/v1/patches/${UID}/qr.png?size=10`)).status).toBe(400);
  });

  it('proxies the product image of the signed record once, and serves none for a record without one', async () => {
    const before = imageRequests;
    for (let i = 0; i < 3; i++) {
      const res = await get(`/v1/patches/${UID}/image`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await res.arrayBuffer()).equals(image)).toBe(true);
    }
    expect(imageRequests - before).toBeLessThanOrEqual(1);
    const none = await get(`/v1/patches/${BARE_UID}/image`);
    expect(none.status).toBe(404);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  describeWithTool(CHROMIUM)(
    `in Chromium${CHROMIUM ? '' : ' (skipped: chromium is not installed; provisioning installs it as root, CI requires it)'}`,
    () => {
      let browser: Browser;
      let authentic: Verification;

      beforeAll(async () => {
        mkdirSync(SCREENSHOTS, { recursive: true });
        browser = await chromium.launch({ executablePath: requireTool(CHROMIUM, 'chromium'), args: ['--no-sandbox'] });
        authentic = (await (await get(`/v1/patches/${UID}/verify`)).json()) as Verification;
      });
      afterAll(async () => {
        await browser?.close();
      });

      interface Opened {
        page: Page;
        status: number;
        bytes: number;
        foreignRequests: string[];
        consoleErrors: string[];
        dialogs: string[];
      }

      /**
       * Opens `urlPath` in a fresh page at 360 px; `served` replaces the API's answer for that URL (an outcome
       * this file cannot cause without changing its others), with the headers the page route sends.
       */
      async function open(urlPath: string, options: { locale?: string; served?: string } = {}): Promise<Opened> {
        const context = await browser.newContext({ viewport: { width: 360, height: 780 }, locale: options.locale ?? 'en-GB' });
        const page = await context.newPage();
        const foreignRequests: string[] = [];
        const consoleErrors: string[] = [];
        const dialogs: string[] = [];
        page.on('request', (request) => {
          if (new URL(request.url()).origin !== api.baseUrl) foreignRequests.push(request.url());
        });
        page.on('console', (message) => {
          // The browser reports a 404 document as a failed load; that status is the page's answer, not a fault.
          const ownStatus = message.location().url === `${api.baseUrl}${urlPath}` && /status of 404/.test(message.text());
          if (message.type() === 'error' && !ownStatus) consoleErrors.push(`${message.text()} (${message.location().url})`);
        });
        page.on('pageerror', (error) => consoleErrors.push(error.message));
        page.on('dialog', (dialog) => {
          dialogs.push(dialog.message());
          void dialog.dismiss();
        });
        if (options.served !== undefined) {
          const body = options.served;
          await page.route(`${api.baseUrl}${urlPath}`, (route) =>
            route.fulfill({
              status: 200,
              headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': PATCH_PAGE_CSP },
              body,
            }),
          );
        }
        const response = (await page.goto(`${api.baseUrl}${urlPath}`, { waitUntil: 'load' }))!;
        const bytes = (await response.body()).length;
        return { page, status: response.status(), bytes, foreignRequests, consoleErrors, dialogs };
      }

      async function seriousAxeViolations(page: Page): Promise<string[]> {
        // Evaluated through the DevTools protocol, which the page's CSP does not govern; the page itself runs no script.
        await page.evaluate(AXE_SOURCE);
        const violations = await page.evaluate(async () => {
          const axe = (globalThis as unknown as { axe: { run: (o: object) => Promise<{ violations: { id: string; impact: string }[] }> } })
            .axe;
          return (await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice'] } })).violations;
        });
        return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact})`);
      }

      async function checkAndCapture(opened: Opened, outcome: PatchOutcome, language: 'en' | 'fr' = 'en'): Promise<void> {
        const { page } = opened;
        expect(await page.locator('[data-outcome]').getAttribute('data-outcome')).toBe(outcome);
        expect((await page.locator('h1').innerText()).trim()).toContain(PAGE_MESSAGES[language].verdicts[outcome].title);
        expect(await page.locator('#verdict p').first().innerText()).toBe(PAGE_MESSAGES[language].verdicts[outcome].meaning);
        expect(await page.locator('main').count()).toBe(1);
        expect(await page.locator('script').count()).toBe(0);
        expect(opened.bytes).toBeLessThan(30 * 1024);
        // Works at 320 px: nothing wider than the screen.
        await page.setViewportSize({ width: 320, height: 700 });
        expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(320);
        await page.setViewportSize({ width: 360, height: 780 });
        await page.screenshot({
          path: path.join(SCREENSHOTS, `${outcome}${language === 'en' ? '' : `-${language}`}-360.png`),
          fullPage: true,
        });
        await page.setViewportSize({ width: 1280, height: 900 });
        await page.screenshot({
          path: path.join(SCREENSHOTS, `${outcome}${language === 'en' ? '' : `-${language}`}-1280.png`),
          fullPage: true,
        });
        // Checked before axe runs: its own injected styles are (rightly) refused by the page's CSP.
        expect(opened.foreignRequests).toEqual([]);
        expect(opened.consoleErrors).toEqual([]);
        expect(opened.dialogs).toEqual([]);
        expect(await seriousAxeViolations(page)).toEqual([]);
        await page.context().close();
      }

      it('shows an authentic patch: product with its image, brand, history, explorer link and proof download', async () => {
        const opened = await open(`/p/${UID}`);
        const { page } = opened;
        expect(opened.status).toBe(200);
        // The hostile name is text on the page: no script ran, no element was made from it.
        expect(await page.locator('[data-field="product.name"]').innerText()).toBe(hostileName);
        expect(await page.locator('[data-field="product.brand"]').innerText()).toBe('Atelier Nord');
        expect(await page.locator('[data-field="uid"]').innerText()).toBe(UID);
        const photo = page.locator('img.photo');
        expect(await photo.getAttribute('alt')).toBe(`Photo of ${hostileName}`);
        expect(await photo.evaluate((img) => (img as unknown as { complete: boolean; naturalWidth: number }).naturalWidth)).toBe(64);
        const timeline = page.locator('ol.timeline li');
        expect(await timeline.count()).toBe(1);
        expect(await timeline.first().innerText()).toContain(`${owner.slice(0, 6)}…${owner.slice(-6)}`);
        const txLink = page.locator('[data-field="anchor.txid"] a');
        expect(await txLink.getAttribute('href')).toBe(EXPLORER.replace('{txid}', authentic.anchor!.txid));
        expect(Number(await page.locator('[data-field="anchor.confirmations"]').innerText())).toBeGreaterThanOrEqual(1);
        expect(await page.locator('[data-field="issuer.signatureValid"]').innerText()).toBe('valid');
        const proofHref = (await page.locator('a[data-link="proof"]').getAttribute('href'))!;
        expect(proofHref).toBe(`/v1/patches/${UID}/proof`);
        const proof = await get(proofHref);
        expect(proof.status).toBe(200);
        expect(((await proof.json()) as { uid: string }).uid).toBe(UID);
        await checkAndCapture(opened, 'authentic');
      });

      it('speaks French to a French browser', async () => {
        const opened = await open(`/p/${UID}`, { locale: 'fr-FR' });
        expect(await opened.page.locator('html').getAttribute('lang')).toBe('fr');
        expect(await opened.page.locator('a[data-link="proof"]').innerText()).toBe(PAGE_MESSAGES.fr.downloadProof);
        await checkAndCapture(opened, 'authentic', 'fr');
      });

      it('shows an unknown patch as not found, with a 404', async () => {
        const opened = await open('/p/PAGE-NOPE');
        expect(opened.status).toBe(404);
        expect(await opened.page.locator('[data-field="uid"]').innerText()).toBe('PAGE-NOPE');
        expect(await opened.page.locator('a[data-link="proof"]').count()).toBe(0);
        await checkAndCapture(opened, 'not_found');
      });

      it('shows a patch still anchoring, without a proof to download', async () => {
        const patches = patchModel(stack.deps.mongo);
        const original = (await patches.findById(BARE_UID).lean())!;
        try {
          await patches.updateOne({ _id: BARE_UID }, { $set: { status: 'anchoring' } });
          const opened = await open(`/v1/patches/${BARE_UID}/verify`);
          expect(opened.status).toBe(200);
          expect(await opened.page.locator('a[data-link="proof"]').count()).toBe(0);
          await checkAndCapture(opened, 'anchoring');
        } finally {
          await patches.replaceOne({ _id: BARE_UID }, original);
        }
      });

      it('shows a record changed after anchoring as tampered, with the reason', async () => {
        const patches = patchModel(stack.deps.mongo);
        const original = (await patches.findById(BARE_UID).lean())!;
        try {
          await patches.updateOne({ _id: BARE_UID }, { $set: { 'record.product.sku': 'FAKE' } });
          const opened = await open(`/p/${BARE_UID}`);
          expect(await opened.page.locator('.reason').innerText()).toMatch(/no longer hashes/);
          await checkAndCapture(opened, 'tampered');
        } finally {
          await patches.replaceOne({ _id: BARE_UID }, original);
        }
      });

      /** The path and query of the simulated tag's next tap URL, as the phone opens it. */
      const nextTap = async () => {
        const url = new URL((await tags.tap(TAG_UID, 1)).taps[0]!.url);
        return `${url.pathname}${url.search}`;
      };

      it('shows a tap of the genuine tag as authentic, the same URL opened again as a replayed tap', async () => {
        const tapPath = await nextTap();
        const first = await open(tapPath);
        expect(first.status).toBe(200);
        expect(await first.page.locator('[data-field="product.name"]').innerText()).toBe(hostileName);
        await checkAndCapture(first, 'authentic');
        const again = await open(tapPath);
        await checkAndCapture(again, 'replayed_tap');
      });

      it('shows a tap URL with a forged MAC as an invalid tag', async () => {
        const tapPath = await nextTap();
        const cmacParam = stack.deps.config.tags.cmacParam;
        const url = new URL(tapPath, api.baseUrl);
        const mac = url.searchParams.get(cmacParam)!;
        url.searchParams.set(cmacParam, `${mac.slice(0, -1)}${mac.endsWith('0') ? '1' : '0'}`);
        await checkAndCapture(await open(`${url.pathname}${url.search}`), 'invalid_tag');
      });

      // Revoking the issuer key would change every other page of this file: the real verification of the patch is
      // put through the view model with the verdict a revocation gives, and served on the page's URL.
      const rendered: [PatchOutcome, (v: Verification) => { verification: Verification; tap?: TapVerdict }][] = [
        [
          'revoked_key',
          (v) => ({
            verification: { ...v, status: 'revoked-key', reason: 'signed by issuer key issuer, revoked at 2026-01-01T00:00:00Z' },
          }),
        ],
      ];
      it.each(rendered)('shows the %s verdict from the view model', async (outcome, make) => {
        const { verification, tap } = make(authentic);
        const imagesAllowed = { imageAllowed: () => true };
        const html = renderPatchPage(patchViewOf(verification, { ...(tap && { tap }), ...imagesAllowed }), {
          language: 'en',
          explorerTxUrl: EXPLORER,
        });
        const opened = await open(`/p/${UID}`, { served: html });
        expect(await opened.page.locator('[data-field="product.name"]').innerText()).toBe(hostileName);
        await checkAndCapture(opened, outcome);
      });
    },
  );
});

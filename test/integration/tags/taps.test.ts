import { PrivateKey } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import { registrationWorkflowId } from '../../../src/registration/ids';
import { patchModel } from '../../../src/registration/models';
import { tagModel, tapEventModel } from '../../../src/tags/models';
import { createTagSimulator } from '../../../ops/stand-ins/tag-simulator/server';
import { historyText } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

/**
 * Taps on the real stack: the API, the worker, the dev KMS (tag masters) and a simulated NTAG 424 DNA provisioned
 * from the KMS the way a factory is. A tap is authentic once per counter; a copied URL, a forged MAC and a tag bound
 * to nothing are told apart; of twenty concurrent taps of one fresh URL exactly one is authentic.
 */
describe('NFC tag taps (NTAG 424 DNA, SUN)', () => {
  let stack: PoolStack;
  let server: Listening;
  let api: ReturnType<typeof apiClient>;
  let simulator: ReturnType<typeof createTagSimulator>;
  const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');
  const TAG_UID = '04A1B2C3D4E5F6';

  const tap = async (url: string, accept = 'application/json') => {
    const res = await fetch(url, { headers: { accept } });
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
  };
  const tapJson = async (url: string) => {
    const answer = await tap(url);
    return { status: answer.status, body: JSON.parse(answer.text) as Record<string, unknown> };
  };

  beforeAll(async () => {
    stack = await startPoolStack({ ANCHOR_CONFIRMATIONS: '1', ANCHOR_MODE: 'single', PUBLIC_API_MAX: '1000' }, { blockIntervalMs: 300 });
    server = await listen(createApp(stack.deps));
    api = apiClient(server.baseUrl, stack.deps.config.auth.apiKey);
    const { tags } = stack.deps.config;
    simulator = createTagSimulator({
      kms: chainClientsFromConfig(stack.deps.config).kms,
      keyIdentifier: tags.keyIdentifier,
      template: { baseUrl: `${server.baseUrl}/t`, piccDataParam: tags.piccDataParam, cmacParam: tags.cmacParam, macInput: tags.macInput },
    });
    await fundAndSyncPool(stack, 3);
  });
  afterAll(async () => {
    await server?.close();
    await stack?.close();
  });

  it('binds the tag in the anchored record, then tells authentic, replayed, forged and concurrent taps apart', async () => {
    const registered = await api.adminPost('/v1/patches', {
      ...registrationBody('TAG-0001', owner),
      tag: { type: 'ntag424', uid: TAG_UID.toLowerCase() },
    });
    expect(registered.status).toBe(202);
    const done = await api.waitDone(String(registered.body.statusUrl), 120_000);
    expect(done.status).toBe('anchored');
    const patch = await patchModel(stack.deps.mongo).findById('TAG-0001').lean();
    expect(patch!.record.tag).toEqual({ type: 'ntag424', uid: TAG_UID, keyIdentifier: 'ntag424-sdm', keyVersion: 1 });

    // Three taps: authentic, each with a higher counter.
    const { taps } = await simulator.tap(TAG_UID, 3);
    const answers = [];
    for (const { url } of taps) answers.push(await tapJson(url));
    expect(answers.map((a) => [a.status, a.body.outcome, (a.body.tag as { counter: number }).counter])).toEqual([
      [200, 'authentic', 1],
      [200, 'authentic', 2],
      [200, 'authentic', 3],
    ]);
    expect(answers[2]!.body).toMatchObject({
      patchUid: 'TAG-0001',
      verification: { status: 'authentic', ownership: { currentOwner: owner } },
    });

    // Tap 2 again: a copied URL.
    expect((await tapJson(taps[1]!.url)).body).toMatchObject({
      outcome: 'replayed',
      patchUid: 'TAG-0001',
      tag: { uid: TAG_UID, counter: 2 },
    });

    // A forged MAC on a fresh counter: refused, and the counter is not spent by it.
    const [fresh] = (await simulator.tap(TAG_UID, 1)).taps;
    const forged = fresh!.url.replace(/cmac=([0-9A-F])/, (_m, c: string) => `cmac=${c === '0' ? '1' : '0'}`);
    expect((await tapJson(forged)).body).toMatchObject({ outcome: 'invalid-mac', patchUid: 'TAG-0001' });

    // Twenty concurrent taps of that same fresh URL: exactly one authentic.
    const concurrent = await Promise.all(Array.from({ length: 20 }, () => tapJson(fresh!.url)));
    const outcomes = concurrent.map((a) => a.body.outcome);
    expect(outcomes.filter((o) => o === 'authentic')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'replayed')).toHaveLength(19);
    expect((await tagModel(stack.deps.mongo).findById(TAG_UID).lean())!.counter).toBe(4);

    // A browser gets the patch page, with the replay verdict.
    const page = await tap(taps[0]!.url, 'text/html');
    expect(page.status).toBe(200);
    expect(page.contentType).toContain('text/html');
    expect(page.text).toContain('data-outcome="replayed_tap"');

    // Every tap is recorded, with a hashed address only.
    const events = await tapEventModel(stack.deps.mongo).find({ tagUid: TAG_UID }).lean();
    expect(events.length).toBe(3 + 1 + 1 + 20 + 1);
    expect(events.every((e) => /^[0-9a-f]{32}$/.test(e.ipHash) && !JSON.stringify(e).includes('127.0.0.1'))).toBe(true);

    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/patchproof_tap_total\{[^}]*outcome="authentic"[^}]*\} 4/);
    expect(metrics).toMatch(/patchproof_tap_total\{[^}]*outcome="replayed"[^}]*\} 21/);
  });

  it('answers unknown-tag for a genuine tag bound to no patch, and 400 in the error envelope for bad parameters', async () => {
    const { url } = (await simulator.tap('04FFEEDDCCBBAA', 1)).taps[0]!;
    expect((await tapJson(url)).body).toMatchObject({ outcome: 'unknown-tag', patchUid: null });
    for (const bad of [
      '/t',
      '/t?picc_data=zz&cmac=00',
      `/t?picc_data=${'0'.repeat(32)}`,
      `/t?picc_data=${'0'.repeat(32)}&cmac=${'0'.repeat(15)}`,
    ]) {
      const answer = await api.get(bad);
      expect([bad, answer.status, answer.body.error?.code]).toEqual([bad, 400, 'VALIDATION_FAILED']);
    }
  });

  it('keeps tags of an earlier master version verifiable after a rotation, and binds new tags under the new one', async () => {
    const before = (await simulator.tap(TAG_UID, 1)).taps[0]!;
    stack.kms.tagMasters.addVersion('ntag424-sdm');
    // The simulated tag keeps the keys it was provisioned with, as a real tag does.
    expect((await tapJson(before.url)).body).toMatchObject({ outcome: 'authentic', patchUid: 'TAG-0001' });
    const after = (await simulator.tap(TAG_UID, 1)).taps[0]!;
    expect((await tapJson(after.url)).body).toMatchObject({ outcome: 'authentic' });

    const registered = await api.adminPost('/v1/patches', {
      ...registrationBody('TAG-0002', owner),
      tag: { type: 'ntag424', uid: '04010203040506' },
    });
    expect(registered.status).toBe(202);
    await api.waitDone(String(registered.body.statusUrl), 120_000);
    const patch = await patchModel(stack.deps.mongo).findById('TAG-0002').lean();
    expect(patch!.record.tag).toMatchObject({ uid: '04010203040506', keyVersion: 2 });
    const { url } = (await simulator.tap('04010203040506', 1)).taps[0]!;
    expect((await tapJson(url)).body).toMatchObject({ outcome: 'authentic', patchUid: 'TAG-0002' });

    // Nothing of a master, a per-tag key or a session key in any log line.
    const secrets = [];
    for (const version of [1, 2]) {
      const keys = await chainClientsFromConfig(stack.deps.config).kms.provisionTagKeys('ntag424-sdm', TAG_UID, version);
      secrets.push(keys.sdmMetaReadKeyHex, keys.sdmFileReadKeyHex);
    }
    const masterFile = JSON.parse(
      (await import('node:fs')).readFileSync(`${stack.kms.keys.dataDir}/tag-masters/ntag424-sdm.json`, 'utf8'),
    ) as { versions: { secretHex: string }[] };
    secrets.push(...masterFile.versions.map((v) => v.secretHex));
    const logs = stack.deps.logs.text().toLowerCase();
    expect(secrets.filter((s) => logs.includes(s.toLowerCase()))).toEqual([]);
    expect(logs).toContain('tag tapped');
    // Nor in the workflow histories of the registrations that bound the tags (payloads decoded).
    for (const uid of ['TAG-0001', 'TAG-0002']) {
      const history = (await historyText(stack.deps.temporal, registrationWorkflowId(uid))).toLowerCase();
      expect(history).toContain(uid.toLowerCase());
      expect({ uid, found: secrets.filter((s) => history.includes(s.toLowerCase())) }).toEqual({ uid, found: [] });
    }
  });
});

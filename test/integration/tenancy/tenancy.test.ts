import { PrivateKey } from '@bsv/sdk';
import { insertManyIgnoringDuplicates } from '../../../src/db/bulkWrites';
import { patchModel, type PatchDocument } from '../../../src/registration/models';
import { createApiKey } from '../../../src/tenancy/keyStore';
import { apiKeyModel } from '../../../src/tenancy/models';
import type { ApiKeyScope } from '../../../src/tenancy/apiKeys';
import { apiClient, registrationBody } from '../../support/patchApi';
import { startTestApi, type TestApi } from '../../support/stack';

/**
 * Brands as tenants on the real API, database and Redis: scoped keys, isolation (another tenant's data is 404),
 * revocation within seconds, the registrations/day quota, paging while patches are added, and the streamed export.
 * Patches are seeded as the registration workflow's first activity writes them: what is tested is what the API
 * lets each key see and do.
 */
describe('tenants and scoped API keys', () => {
  let api: TestApi;
  const owner = PrivateKey.fromRandom().toPublicKey().toAddress('main');

  beforeAll(async () => {
    api = await startTestApi({ API_KEY_CACHE_MS: '1000', ADMIN_API_MAX: '100000', API_KEY_RATE_MAX: '100000' });
  }, 60_000);
  afterAll(() => api?.close());

  const keyFor = async (tenantId: string, scopes: ApiKeyScope[], extra: { registrationsPerDay?: number } = {}) =>
    (await createApiKey(api.deps.mongo, { tenantId, name: `${tenantId} test`, scopes, mode: 'test', createdBy: 'test', ...extra })).key;

  const seedPatches = async (tenantId: string, prefix: string, count: number, createdAt = () => new Date()) => {
    const docs: PatchDocument[] = Array.from({ length: count }, (_, i) => {
      const uid = `${prefix}-${String(i).padStart(5, '0')}`;
      const at = createdAt();
      return {
        _id: uid,
        registrationId: `registration-${uid}`,
        status: 'anchored',
        requestHash: 'h',
        idempotencyKey: null,
        record: { product: { name: 'Field jacket', sku: 'FJ-01' } },
        recordHash: `rh-${uid}`,
        issuerSignature: null,
        anchor: null,
        owner,
        head: null,
        lastError: null,
        tenantId,
        createdBy: 'seed',
        createdAt: at,
        updatedAt: at,
      };
    });
    for (let i = 0; i < docs.length; i += 500) await insertManyIgnoringDuplicates(patchModel(api.deps.mongo), docs.slice(i, i + 500));
    return docs.map((d) => d._id);
  };

  it('shows each tenant only its own patches and batches; the other tenant’s answer 404', async () => {
    const acme = apiClient(api.baseUrl, await keyFor('acme', ['patches:read', 'batches:write']));
    const globex = apiClient(api.baseUrl, await keyFor('globex', ['patches:read', 'batches:write']));
    await seedPatches('acme', 'ISO-ACME', 3);
    await seedPatches('globex', 'ISO-GLOBEX', 2);

    const acmeList = await acme.adminGet('/v1/patches?limit=100');
    expect(acmeList.status).toBe(200);
    expect((acmeList.body.items as { uid: string }[]).map((p) => p.uid)).toEqual(['ISO-ACME-00000', 'ISO-ACME-00001', 'ISO-ACME-00002']);
    expect(((await globex.adminGet('/v1/patches')).body.items as { uid: string }[]).map((p) => p.uid)).toEqual([
      'ISO-GLOBEX-00000',
      'ISO-GLOBEX-00001',
    ]);
    expect((await acme.adminGet('/v1/registrations/registration-ISO-ACME-00000')).status).toBe(200);
    const crossRead = await globex.adminGet('/v1/registrations/registration-ISO-ACME-00000');
    expect(crossRead.status).toBe(404);
    expect(crossRead.body.error?.code).toBe('NOT_FOUND');

    // The same Idempotency-Key in two tenants makes two batches, each visible to its own tenant only.
    const body = JSON.stringify([registrationBody('ISO-BATCH-1', owner)]);
    const acmeBatch = await acme.call('POST', '/v1/patch-batches', body, {
      'content-type': 'application/json',
      'idempotency-key': 'run-1',
      'x-api-key': await keyFor('acme', ['batches:write']),
    });
    expect(acmeBatch.status).toBe(202);
    const globexBatch = await globex.call('POST', '/v1/patch-batches', JSON.stringify([registrationBody('ISO-BATCH-2', owner)]), {
      'content-type': 'application/json',
      'idempotency-key': 'run-1',
      'x-api-key': await keyFor('globex', ['batches:write']),
    });
    expect(globexBatch.status).toBe(202);
    expect(globexBatch.body.batchId).not.toBe(acmeBatch.body.batchId);
    expect((await acme.adminGet(`/v1/patch-batches/${acmeBatch.body.batchId as string}`)).status).toBe(200);
    expect((await globex.adminGet(`/v1/patch-batches/${acmeBatch.body.batchId as string}`)).status).toBe(404);
    expect((await globex.adminGet(`/v1/patch-batches/${acmeBatch.body.batchId as string}/items`)).status).toBe(404);
  }, 60_000);

  it('refuses writes to a read-only key (403) and platform operations to a brand admin (403)', async () => {
    const reader = apiClient(api.baseUrl, await keyFor('acme', ['patches:read']));
    const refused = await reader.adminPost('/v1/patches', registrationBody('RO-1', owner));
    expect(refused.status).toBe(403);
    expect(refused.body.error?.code).toBe('FORBIDDEN');
    expect(await patchModel(api.deps.mongo).exists({ _id: 'RO-1' })).toBeNull();
    const brandAdmin = apiClient(api.baseUrl, await keyFor('acme', ['admin']));
    expect((await brandAdmin.adminGet('/v1/admin/utxo-health')).status).toBe(403);
  });

  it('stops accepting a revoked key within 5 seconds', async () => {
    const operator = apiClient(api.baseUrl, api.deps.config.auth.apiKey);
    const created = await operator.adminPost('/v1/admin/api-keys', { tenantId: 'acme', name: 'to revoke', scopes: ['patches:read'] });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    const id = (created.body.apiKey as { id: string }).id;
    const client = apiClient(api.baseUrl, key);
    expect((await client.adminGet('/v1/patches?limit=1')).status).toBe(200);
    // Revoked behind the API's back (as `patchproof api-keys revoke` does): the cache must not outlive it.
    await apiKeyModel(api.deps.mongo).updateOne({ _id: id }, { $set: { revokedAt: new Date(), revokedBy: 'test' } });
    const revokedAt = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - revokedAt < 10_000) {
      status = (await client.adminGet('/v1/patches?limit=1')).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
  }, 20_000);

  it('answers 429 with Retry-After once a key has used its registrations for the day', async () => {
    const key = await keyFor('quota-co', ['patches:write'], { registrationsPerDay: 1 });
    const writer = apiClient(api.baseUrl, key);
    expect((await writer.adminPost('/v1/patches', registrationBody('QUOTA-1', owner))).status).toBe(202);
    const second = await fetch(`${api.baseUrl}/v1/patches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify(registrationBody('QUOTA-2', owner)),
    });
    expect(second.status).toBe(429);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    const retryAfter = Number(second.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(await patchModel(api.deps.mongo).exists({ _id: 'QUOTA-2' })).toBeNull();
  }, 30_000);

  it('pages through every patch exactly once while new ones are registered', async () => {
    const reader = apiClient(api.baseUrl, await keyFor('pager', ['patches:read']));
    const before = await seedPatches('pager', 'PAGE', 300);
    let inserted = 0;
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await reader.adminGet(`/v1/patches?limit=25${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...(page.body.items as { uid: string }[]).map((p) => p.uid));
      cursor = page.body.nextCursor as string | null;
      // Registered between two pages: they land after what was listed, never inside a page already read.
      await seedPatches('pager', `PAGE-NEW${inserted++}`, 3);
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    for (const uid of before) expect(seen.filter((s) => s === uid)).toHaveLength(1);
    expect(seen.filter((s) => s.startsWith('PAGE-NEW')).length).toBeGreaterThan(0);
  }, 120_000);

  it('exports a tenant’s whole history as NDJSON and CSV, its own patches only', async () => {
    const reader = await keyFor('exporter', ['patches:read']);
    const uids = await seedPatches('exporter', 'EXP', 2_000);
    const ndjson = await fetch(`${api.baseUrl}/v1/exports/patches?format=ndjson`, { headers: { 'x-api-key': reader } });
    expect(ndjson.status).toBe(200);
    expect(ndjson.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await ndjson.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { uid: string; createdBy: string });
    expect(lines.map((l) => l.uid)).toEqual(uids);
    const csv = await fetch(`${api.baseUrl}/v1/exports/patches?format=csv`, { headers: { 'x-api-key': reader } });
    const rows = (await csv.text()).trim().split('\n');
    expect(rows[0]).toBe(
      'uid,registrationId,status,owner,productName,sku,serialNumber,recordHash,txid,blockHeight,batchId,createdBy,createdAt,updatedAt',
    );
    expect(rows).toHaveLength(2_001);
    expect(rows[1]!.startsWith('EXP-00000,registration-EXP-00000,anchored,')).toBe(true);
  }, 120_000);

  // The predecessor's single shared key (§14 item 21): one key did everything for every brand. The bootstrap key
  // is now one admin of the default tenant, and a brand's key reaches nothing of the default tenant's.
  it('keeps the bootstrap key an admin of the default tenant only', async () => {
    const operator = apiClient(api.baseUrl, api.deps.config.auth.apiKey);
    await seedPatches('default', 'DEF', 1);
    const list = await operator.adminGet('/v1/patches?limit=1000');
    expect((list.body.items as { uid: string }[]).map((p) => p.uid)).toContain('DEF-00000');
    expect((list.body.items as { uid: string }[]).some((p) => p.uid.startsWith('ISO-ACME'))).toBe(false);
    const acme = apiClient(api.baseUrl, await keyFor('acme', ['admin']));
    expect((await acme.adminGet('/v1/registrations/registration-DEF-00000')).status).toBe(404);
    const keys = await acme.adminGet('/v1/admin/api-keys');
    expect((keys.body.apiKeys as { tenantId: string }[]).every((k) => k.tenantId === 'acme')).toBe(true);
    expect(JSON.stringify(keys.body)).not.toMatch(/secretHash|pp_(live|test)_/);
  });
});

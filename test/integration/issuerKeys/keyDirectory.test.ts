import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PublicKey } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import type { IssuerKeyDirectory } from '../../../src/issuerKeys/directory';
import { issuerKeyRevocationWorkflowId } from '../../../src/issuerKeys/ids';
import { issuerKeyRevocationModel } from '../../../src/issuerKeys/models';
import { startSync, waitForPoolOperation } from '../../../src/pool/launch';
import { patchModel } from '../../../src/registration/models';
import { kmsRotationWorkflowId } from '../../../src/rotation/ids';
import { kmsRotationInput, startKmsRotation } from '../../../src/rotation/launch';
import type { KmsRotationReport } from '../../../workflows/rotation/shared';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { runPatchproof as patchproof } from '../../support/processes';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { testEnvironment } from '../../support/stack';

const DIRECTORY = '/.well-known/patchproof-keys.json';

describe('the issuer key directory and key revocation, against the dev KMS, the chain simulator, the API and the CLI', () => {
  let stack: PoolStack;
  let api: Listening;
  let owner: string;
  let cliEnv: Record<string, string>;
  const scratch = mkdtempSync(path.join(tmpdir(), 'key-directory-'));

  beforeAll(async () => {
    stack = await startPoolStack(
      { FEE_PER_KB: '100', ANCHOR_CONFIRMATIONS: '1', KEY_SETTINGS_CACHE_MS: '200', PUBLIC_API_MAX: '100000', ADMIN_API_MAX: '100000' },
      // Mined every second: the simulator dates a block at least a second after the one before (as nodes require a
      // time past the median of earlier blocks), so faster mining would run block times ahead of the clock.
      { blockIntervalMs: 1_000 },
    );
    api = await listen(createApp(stack.deps));
    owner = PublicKey.fromString(stack.kms.keys.ensure('owner-test').pubKeyHex).toAddress('testnet');
    for (let i = 0; i < 6; i++) await stack.fund(stack.accounts.funding.address, 20_000 + i);
    const sync = await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test');
    await waitForPoolOperation(stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 100 });
    cliEnv = testEnvironment({ ...stack.env, MONGODB_URI: stack.deps.config.mongo.uri, KEY_SETTINGS_CACHE_MS: '200', LOG_LEVEL: 'warn' });
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const http = async (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${api.baseUrl}${url}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-api-key': stack.deps.config.auth.apiKey, ...headers },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: (text ? JSON.parse(text) : {}) as Record<string, unknown> & { error?: { code: string; message: string } },
    };
  };
  const registered = async (uid: string) => {
    const accepted = await http('POST', '/v1/patches', { product: { uid_tag_id: uid, name: 'Field jacket' }, auth: { owner } });
    expect(accepted.status).toBe(202);
    for (let i = 0; i < 600; i++) {
      const { body } = await http('GET', accepted.body.statusUrl as string);
      if (body.state !== 'running') {
        expect(body).toMatchObject({ state: 'completed', status: 'anchored' });
        return (await patchModel(stack.deps.mongo).findById(uid).lean())!;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${uid} was not anchored`);
  };
  const verify = async (uid: string) =>
    (await http('GET', `/v1/patches/${uid}/verify`)).body as {
      status: string;
      reason?: string;
      revokedKey?: { kid: string; revokedAt: string; seq: number; claimedAt: string | null; anchoredAt: string | null };
    };
  const directory = async () => (await http('GET', DIRECTORY)).body as unknown as IssuerKeyDirectory;
  const savedBundle = async (uid: string) => {
    const file = path.join(scratch, `${uid}.proof.json`);
    writeFileSync(file, JSON.stringify((await http('GET', `/v1/patches/${uid}/proof`)).body));
    return file;
  };

  it('revokes an issuer key from a past time: records it signed after that verify as revoked-key, earlier ones stay authentic', async () => {
    const issuerPub = stack.kms.keys.describe('issuer').pubKeyHex;
    const before = await registered('PP-KEY-BEFORE');

    // Before any rotation the directory lists the environment's key, cacheable, with a strong ETag.
    const first = await http('GET', DIRECTORY);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('public, max-age=300');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]{43}"$/);
    expect(first.body).toEqual({
      format: 'patchproof-keys/1',
      keys: [
        {
          kid: 'issuer',
          publicKey: issuerPub,
          status: 'active',
          validFrom: null,
          validUntil: null,
          revokedAt: null,
          revocationReason: null,
        },
      ],
    });
    // A cache revalidating (fetch adds `Cache-Control: no-cache` to a conditional request unless one is given).
    const revalidate = { 'if-none-match': etag, 'cache-control': 'max-age=0' };
    expect((await http('GET', DIRECTORY, undefined, revalidate)).status).toBe(304);

    // The key that signs is not revoked without force, through the API or the CLI; the refusal is in the history.
    const refused = await http('POST', '/v1/admin/issuer-keys/issuer/revoke', { reason: 'suspected exposure' });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/rotate the issuer key first/) });
    await recordHistoryIfAsked(stack.deps.temporal, issuerKeyRevocationWorkflowId('issuer'), 'issuer-key-revocation-refused');
    const refusedByCli = await patchproof(['keys', 'revoke', 'issuer', '--reason', 'suspected exposure'], cliEnv);
    expect(refusedByCli.code).toBe(1);
    expect(refusedByCli.stdout).toMatch(/^refused: issuer signs new records/);
    expect(await issuerKeyRevocationModel(stack.deps.mongo).countDocuments()).toBe(0);

    // The moment the key is (later) found to have been exposed from: after the first record's anchor was mined (by
    // the block's own time, which the faucet's burst of blocks ran a few seconds ahead); then a record signed after it.
    const beforeAnchor = await chainClientsFromConfig(stack.deps.config).woc.getTx(before.anchor!.txid);
    const exposedAtMs = Math.max(Date.now(), (beforeAnchor!.blockTime! + 1) * 1000);
    const exposedAt = new Date(exposedAtMs).toISOString();
    await new Promise((r) => setTimeout(r, exposedAtMs - Date.now() + 1_100));
    const after = await registered('PP-KEY-AFTER');
    expect(before.issuerSignature?.pubKeyHex).toBe(issuerPub);
    expect(after.issuerSignature?.pubKeyHex).toBe(issuerPub);

    // Rotate to a new key first, as the runbook says (created in the KMS first), then revoke the old one from the CLI.
    stack.kms.keys.create('issuer-2');
    const rotation = await startKmsRotation(
      stack.deps.temporal,
      kmsRotationInput(stack.deps.config, {
        purpose: 'issuer',
        newKeyIdentifier: 'issuer-2',
        requestedBy: 'test',
        startedByKeyId: 'test',
        trigger: 'test',
        autoApproveAfter: '1s',
        gracePeriodDays: 0,
      }),
    );
    const rotated = (await stack.deps.temporal.workflow
      .getHandle(kmsRotationWorkflowId('issuer'), rotation.runId)
      .result()) as KmsRotationReport;
    expect(rotated.outcome).toBe('completed');
    const renewed = await registered('PP-KEY-RENEWED');
    expect(renewed.issuerSignature?.keyIdentifier).toBe('issuer-2');

    const revoked = await patchproof(
      ['keys', 'revoke', 'issuer', '--reason', 'key material in a leaked backup', '--revoked-at', exposedAt],
      cliEnv,
    );
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`issuer REVOKED from ${exposedAt}: key material in a leaked backup`);
    await recordHistoryIfAsked(stack.deps.temporal, issuerKeyRevocationWorkflowId('issuer'), 'issuer-key-revocation-revoked');

    // Verification: the record signed before the exposure stays authentic, the one after is revoked-key, the new key's is authentic.
    expect(await verify('PP-KEY-BEFORE')).toMatchObject({ status: 'authentic' });
    const condemned = await verify('PP-KEY-AFTER');
    expect(condemned).toMatchObject({
      status: 'revoked-key',
      revokedKey: { kid: 'issuer', revokedAt: exposedAt, seq: 0, claimedAt: after.record.registeredAt },
    });
    expect(condemned.reason).toMatch(/revoked at/);
    expect(await verify('PP-KEY-RENEWED')).toMatchObject({ status: 'authentic' });
    // The public page says so too, from a fresh verification (certificate) and from the kept verdicts (/p/).
    for (const page of ['/v1/patches/PP-KEY-AFTER/certificate', '/p/PP-KEY-AFTER']) {
      expect(await (await fetch(`${api.baseUrl}${page}`)).text()).toContain('data-outcome="revoked_key"');
    }

    // The directory publishes the revocation with its reason and time; the new key is the active one.
    const published = await http('GET', DIRECTORY, undefined, revalidate);
    expect(published.status).toBe(200);
    expect((published.body as unknown as IssuerKeyDirectory).keys).toEqual([
      expect.objectContaining({
        kid: 'issuer',
        publicKey: issuerPub,
        status: 'revoked',
        revokedAt: exposedAt,
        revocationReason: 'key material in a leaked backup',
        validUntil: exposedAt,
      }),
      expect.objectContaining({
        kid: 'issuer-2',
        publicKey: stack.kms.keys.describe('issuer-2').pubKeyHex,
        status: 'active',
        validUntil: null,
      }),
    ]);

    // Offline: verify-proof resolves the key through the published directory.
    const keys = `${api.baseUrl}${DIRECTORY}`;
    const good = await patchproof(['verify-proof', await savedBundle('PP-KEY-BEFORE'), '--keys', keys], cliEnv);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain(`PP-KEY-BEFORE: AUTHENTIC, signed by issuer key issuer of the key directory ${keys}`);
    const bad = await patchproof(['verify-proof', await savedBundle('PP-KEY-AFTER'), '--keys', keys], cliEnv);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^PP-KEY-AFTER: REVOKED-KEY: signed by issuer key issuer, revoked at /);

    // The audit trail: in the workflow's memo and search attributes, and in the store.
    const description = await stack.deps.temporal.workflow.getHandle(issuerKeyRevocationWorkflowId('issuer')).describe();
    expect(description.memo).toMatchObject({
      kid: 'issuer',
      reason: 'key material in a leaked backup',
      requestedBy: expect.stringMatching(/^cli:/),
    });
    expect(description.searchAttributes).toMatchObject({ PatchProofKind: ['issuer-key-revocation'], PatchProofStatus: ['revoked'] });
    const stored = (await issuerKeyRevocationModel(stack.deps.mongo).findById(issuerPub).lean())!;
    expect(stored).toMatchObject({ kid: 'issuer', revokedAt: new Date(exposedAt), reason: 'key material in a leaked backup' });
    expect(stored.requests).toEqual([
      expect.objectContaining({
        requestedBy: expect.stringMatching(/^cli:/),
        workflowId: 'issuer-key-revocation-issuer',
        runId: description.runId,
      }),
    ]);
  }, 180_000); // A rotation, three registrations and several CLI runs.

  it('revoking a key again changes nothing unless it moves the time earlier; every request is kept', async () => {
    const issuerPub = stack.kms.keys.describe('issuer').pubKeyHex;
    const { revokedAt } = (await issuerKeyRevocationModel(stack.deps.mongo).findById(issuerPub).lean())!;
    const later = await http('POST', '/v1/admin/issuer-keys/issuer/revoke', { reason: 'second report', requestedBy: 'bob' });
    expect(later.status).toBe(200);
    expect(later.body).toMatchObject({
      kid: 'issuer',
      changed: false,
      revokedAt: revokedAt.toISOString(),
      reason: 'key material in a leaked backup',
    });

    const earlierTime = new Date(revokedAt.getTime() - 3_600_000).toISOString();
    const earlier = await http('POST', '/v1/admin/issuer-keys/issuer/revoke', {
      reason: 'exposed an hour sooner',
      revokedAt: earlierTime,
      requestedBy: 'carol',
    });
    expect(earlier.status).toBe(200);
    expect(earlier.body).toMatchObject({ changed: true, revokedAt: earlierTime, reason: 'exposed an hour sooner', requestedBy: 'carol' });
    expect(await verify('PP-KEY-BEFORE')).toMatchObject({ status: 'revoked-key' });

    const stored = (await issuerKeyRevocationModel(stack.deps.mongo).findById(issuerPub).lean())!;
    expect(stored.requests.map((r) => r.requestedBy)).toEqual([expect.stringMatching(/^cli:/), 'bob', 'carol']);
    const status = await http('GET', '/v1/admin/issuer-keys/issuer/revocation');
    expect(status.body).toMatchObject({ state: 'completed', status: { requestedBy: 'carol', changed: true } });
  });

  it('answers bad revocation requests with the error envelope and a 4xx, and starts nothing', async () => {
    const before = await issuerKeyRevocationModel(stack.deps.mongo).findById(stack.kms.keys.describe('issuer').pubKeyHex).lean();
    const cases: [string, unknown, number, string][] = [
      ['/v1/admin/issuer-keys/issuer/revoke', {}, 400, 'VALIDATION_FAILED'],
      [
        '/v1/admin/issuer-keys/issuer/revoke',
        { reason: 'x', revokedAt: new Date(Date.now() + 3_600_000).toISOString() },
        400,
        'VALIDATION_FAILED',
      ],
      ['/v1/admin/issuer-keys/issuer/revoke', { reason: 'x', revokedAt: 'yesterday' }, 400, 'VALIDATION_FAILED'],
      ['/v1/admin/issuer-keys/issuer/revoke', { reason: 'x', force: 'yes' }, 400, 'VALIDATION_FAILED'],
      ['/v1/admin/issuer-keys/no%20such%20key/revoke', { reason: 'x' }, 400, 'VALIDATION_FAILED'],
    ];
    for (const [url, body, status, code] of cases) {
      const res = await http('POST', url, body);
      expect([url, res.status, res.body.error?.code]).toEqual([url, status, code]);
    }
    // A well-formed kid the directory does not list: the workflow refuses it (404), and nothing is recorded.
    const unknown = await http('POST', '/v1/admin/issuer-keys/issuer-9/revoke', { reason: 'typo' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('NOT_FOUND');
    expect(await issuerKeyRevocationModel(stack.deps.mongo).countDocuments()).toBe(1);
    expect(await issuerKeyRevocationModel(stack.deps.mongo).findById(stack.kms.keys.describe('issuer').pubKeyHex).lean()).toEqual(before);
    const usage = await patchproof(['keys', 'revoke', 'issuer', '--reason', 'x', '--revoked-at', '2999-01-01T00:00:00Z'], cliEnv);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--revoked-at: a time that has passed');
  });

  it('lists the directory from the CLI', async () => {
    const listed = await patchproof(['--json', 'keys', 'list'], cliEnv);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual(await directory());
  });
});

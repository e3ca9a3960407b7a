import { PrivateKey, PublicKey } from '@bsv/sdk';
import jwt from 'jsonwebtoken';
import { Types } from 'mongoose';
import { createApp } from '../../../api/app';
import { createSvdSecretDeriver } from '../../../src/auth/svdService';
import { makeChallenge } from '../../../src/auth/svdCrypto';
import { createTokenKeyring, type TokenKeyring } from '../../../src/auth/tokens';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import { loadKeyDirectory } from '../../../src/issuerKeys/directory';
import { startSync, startTopUp, waitForPoolOperation } from '../../../src/pool/launch';
import { utxoModel } from '../../../src/pool/models';
import { patchModel } from '../../../src/registration/models';
import { kmsRotationWorkflowId, JWT_ROTATION_WORKFLOW_ID, type KmsKeyPurpose } from '../../../src/rotation/ids';
import { createLiveJwtKeys, keyringFromConfig, type Keyring } from '../../../src/rotation/keyring';
import {
  getKmsRotationStatus,
  jwtRotationInput,
  kmsRotationInput,
  startJwtRotation,
  startKmsRotation,
  type KmsRotationRequest,
} from '../../../src/rotation/launch';
import { rotationKeyModel } from '../../../src/rotation/models';
import { assertActiveKeysAvailable } from '../../../src/rotation/startup';
import { SvdClient } from '../../../src/sdk/svdClient';
import type { TopUpReport } from '../../../workflows/pool/shared';
import {
  APPROVER_IS_STARTER_REASON,
  approveRotationSignal,
  type JwtRotationStatus,
  type KmsRotationReport,
  type KmsRotationStatus,
} from '../../../workflows/rotation/shared';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { runPatchproof as patchproof } from '../../support/processes';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { testEnvironment } from '../../support/stack';

const GRACE_5_SECONDS = 5 / 86_400;

describe('key rotation workflows against the dev KMS, the chain simulator and the API', () => {
  let stack: PoolStack;
  let api: Listening;
  let owner: string;
  /** A separate reader of the key settings, as another process would have. */
  let observer: Keyring;
  const apiKey = () => stack.deps.config.auth.apiKey;

  beforeAll(async () => {
    stack = await startPoolStack(
      {
        FEE_PER_KB: '100',
        ANCHOR_CONFIRMATIONS: '1',
        KEY_SETTINGS_CACHE_MS: '200',
        SVD_USE_KMS: 'true',
        SVD_SESSION_TTL_SEC: '2',
        EMAIL_TOKEN_TTL_SEC: '2',
        SVD_CLOCK_SKEW_SEC: '0',
        SVD_RATE_MAX_PER_IP: '100000',
        SVD_RATE_MAX_PER_USER: '100000',
        PUBLIC_API_MAX: '100000',
        ADMIN_API_MAX: '100000',
      },
      { blockIntervalMs: 300 },
    );
    api = await listen(createApp(stack.deps));
    observer = keyringFromConfig(stack.deps.config, stack.deps.mongo);
    owner = PublicKey.fromString(stack.kms.keys.ensure('owner-test').pubKeyHex).toAddress('testnet');
    // The operator provisions every rotation target in the KMS first; the dev KMS creates nothing on use.
    for (const name of ['issuer-withdrawn', 'issuer-four-eyes', 'issuer-2', 'funding-2', 'svd-2']) stack.kms.keys.create(name);
    for (let i = 0; i < 8; i++) await stack.fund(stack.accounts.funding.address, 20_000 + i);
    const sync = await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test');
    await waitForPoolOperation(stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 100 });
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const http = async (method: string, url: string, body?: unknown, key = apiKey()) => {
    const res = await fetch(`${api.baseUrl}${url}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string } } };
  };
  const register = async (uid: string) => {
    const accepted = await http('POST', '/v1/patches', {
      product: { uid_tag_id: uid, name: 'Field jacket', category: 'apparel', sku: 'FJ-01', serial_number: uid, material: 'wool' },
      metadata: { notes: 'rotation test', image: 'https://img.example/fj.png', patch_location: 'left sleeve' },
      auth: { owner },
    });
    expect(accepted.status).toBe(202);
    return accepted.body.statusUrl as string;
  };
  const waitRegistered = async (statusUrl: string) => {
    for (let i = 0; i < 600; i++) {
      const { body } = await http('GET', statusUrl);
      if (body.state !== 'running') return body;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${statusUrl} did not finish`);
  };
  const verify = async (uid: string) =>
    (await http('GET', `/v1/patches/${uid}/verify`)).body as {
      status: string;
      issuerSignature?: { valid: boolean; pubKeyHex: string; keyIdentifier: string };
    };
  const request = (purpose: KmsKeyPurpose, newKeyIdentifier: string, extra: Partial<KmsRotationRequest> = {}) =>
    kmsRotationInput(stack.deps.config, {
      purpose,
      newKeyIdentifier,
      requestedBy: 'test',
      startedByKeyId: 'test-starter',
      trigger: 'test',
      autoApproveAfter: null,
      ...extra,
    });
  const waitForStep = async (purpose: KmsKeyPurpose, step: KmsRotationStatus['step']) => {
    for (let i = 0; i < 300; i++) {
      const status = await getKmsRotationStatus(stack.deps.temporal, purpose);
      if (status.state === 'running' && status.status?.step === step) return status.status;
      if (status.state === 'failed') throw new Error(`rotation failed: ${status.reason}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the ${purpose} rotation never reached ${step}`);
  };
  const result = (purpose: KmsKeyPurpose, runId: string) =>
    stack.deps.temporal.workflow.getHandle(kmsRotationWorkflowId(purpose), runId).result() as Promise<KmsRotationReport>;
  const keyState = async (purpose: string, keyIdentifier: string) =>
    (await rotationKeyModel(stack.deps.mongo).findById(`${purpose}:${keyIdentifier}`).lean())?.state;

  it('refuses a second rotation of a purpose while one runs, and a cancel before the cutover leaves the old key active', async () => {
    const started = await startKmsRotation(stack.deps.temporal, request('issuer', 'issuer-withdrawn'));
    expect(started.alreadyStarted).toBe(false);
    const second = await startKmsRotation(stack.deps.temporal, request('issuer', 'issuer-other'));
    expect(second).toEqual({ workflowId: 'kms-rotation-issuer', runId: started.runId, alreadyStarted: true });
    const viaApi = await http('POST', '/v1/admin/rotations/kms', { purpose: 'issuer', newKeyIdentifier: 'issuer-other' });
    expect(viaApi.status).toBe(409);
    expect(viaApi.body.error?.code).toBe('OPERATION_IN_PROGRESS');

    const waiting = await waitForStep('issuer', 'awaiting_approval');
    expect(waiting.newKey?.pubKeyHex).toBe(stack.kms.keys.describe('issuer-withdrawn').pubKeyHex);
    expect(await keyState('issuer', 'issuer-withdrawn')).toBe('staged');

    const cancelled = await http('POST', '/v1/admin/rotations/issuer/cancel', { by: 'alice', reason: 'wrong key' });
    expect(cancelled.status).toBe(202);
    const report = await result('issuer', started.runId);
    expect(report).toMatchObject({ outcome: 'cancelled', step: 'cancelled', cancelledBy: 'alice' });
    expect(report.cutoverAt).toBeUndefined();
    await recordHistoryIfAsked(stack.deps.temporal, 'kms-rotation-issuer', 'kms-rotation-cancelled', started.runId);

    observer.forget();
    expect(await observer.activeKeyId('issuer')).toBe('issuer');
    expect(await keyState('issuer', 'issuer-withdrawn')).toBe('cancelled');
    expect(await keyState('issuer', 'issuer')).toBe('active');
    // New registrations are still signed by the old key.
    const done = await waitRegistered(await register('PP-ROT-C1'));
    expect(done).toMatchObject({ state: 'completed', status: 'anchored' });
    const patch = (await patchModel(stack.deps.mongo).findById('PP-ROT-C1').lean())!;
    expect(patch.issuerSignature).toMatchObject({ keyIdentifier: 'issuer', pubKeyHex: stack.kms.keys.describe('issuer').pubKeyHex });
  });

  it('refuses a rotation to a key nobody created in the KMS at preflight, by name, and changes nothing', async () => {
    const signsBefore = stack.signRequests();
    const started = await http('POST', '/v1/admin/rotations/kms', { purpose: 'issuer', newKeyIdentifier: 'issuer-unprovisioned' });
    expect(started.status).toBe(202);
    let status = await getKmsRotationStatus(stack.deps.temporal, 'issuer');
    for (let i = 0; i < 300 && status.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await getKmsRotationStatus(stack.deps.temporal, 'issuer');
    }
    expect(status).toMatchObject({
      state: 'failed',
      runId: started.body.runId,
      failureType: 'RotationPreflightFailed',
      reason: expect.stringContaining('issuer-unprovisioned does not exist in the KMS; create it there'),
    });
    const failed = await http('GET', '/v1/admin/rotations/issuer');
    expect(failed.body).toMatchObject({ state: 'failed', failureType: 'RotationPreflightFailed' });
    // Nothing staged, nothing signed, the old key still active, and the dev KMS did not create the key by being asked.
    expect(await keyState('issuer', 'issuer-unprovisioned')).toBeUndefined();
    observer.forget();
    expect(await observer.activeKeyId('issuer')).toBe('issuer');
    expect(stack.signRequests()).toBe(signsBefore);
    expect(() => stack.kms.keys.describe('issuer-unprovisioned')).toThrow(/does not exist/);
  });

  it('refuses the approval of a rotation by the API key that started it (403 APPROVER_IS_STARTER) and sends nothing', async () => {
    const started = await http('POST', '/v1/admin/rotations/kms', { purpose: 'issuer', newKeyIdentifier: 'issuer-four-eyes' });
    expect(started.status).toBe(202);
    await waitForStep('issuer', 'awaiting_approval');
    const description = await stack.deps.temporal.workflow.getHandle('kms-rotation-issuer').describe();
    expect(description.memo).toEqual({ startedByKeyId: 'bootstrap' });

    const sameKey = await http('POST', '/v1/admin/rotations/issuer/approve', { by: 'alice' });
    expect(sameKey.status).toBe(403);
    expect(sameKey.body.error).toMatchObject({ code: 'APPROVER_IS_STARTER', details: { startedByKeyId: 'bootstrap' } });
    const waiting = await waitForStep('issuer', 'awaiting_approval');
    expect(waiting).toMatchObject({ startedByKeyId: 'bootstrap', refused: [] });
    expect(waiting.approvedBy).toBeUndefined();
    // A signal that bypasses the API with the starter's credential is refused by the workflow itself.
    await stack.deps.temporal.workflow.getHandle('kms-rotation-issuer').signal(approveRotationSignal, { by: 'alice', keyId: 'bootstrap' });
    let refused = await waitForStep('issuer', 'awaiting_approval');
    for (let i = 0; i < 50 && refused.refused.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      refused = await waitForStep('issuer', 'awaiting_approval');
    }
    expect(refused.refused).toEqual([expect.objectContaining({ signal: 'approve', by: 'alice', reason: APPROVER_IS_STARTER_REASON })]);

    // Withdrawing is not gated: any operator key may stop a rotation before the cutover.
    expect((await http('POST', '/v1/admin/rotations/issuer/cancel', { by: 'alice', reason: 'four-eyes test' })).status).toBe(202);
    expect(await result('issuer', started.body.runId as string)).toMatchObject({ outcome: 'cancelled' });
    expect(await keyState('issuer', 'issuer-four-eyes')).toBe('cancelled');
    await recordHistoryIfAsked(
      stack.deps.temporal,
      'kms-rotation-issuer',
      'kms-rotation-approval-by-starter-refused',
      started.body.runId as string,
    );
  });

  it('rotates the issuer key: registrations across the cutover succeed and verify, and old-key records verify after retirement', async () => {
    const oldPub = stack.kms.keys.describe('issuer').pubKeyHex;
    const newPub = stack.kms.keys.describe('issuer-2').pubKeyHex;
    const before = await waitRegistered(await register('PP-ROT-I0'));
    expect(before).toMatchObject({ status: 'anchored' });

    const started = await startKmsRotation(stack.deps.temporal, request('issuer', 'issuer-2', { gracePeriodDays: GRACE_5_SECONDS }));
    await waitForStep('issuer', 'awaiting_approval');
    // Registrations run while the operator approves and the cutover happens.
    const during = ['PP-ROT-I1', 'PP-ROT-I2', 'PP-ROT-I3'];
    const statusUrls = await Promise.all(during.map(register));
    const approved = await http('POST', '/v1/admin/rotations/issuer/approve', { by: 'bob' });
    expect(approved.status).toBe(202);
    // While the grace period runs the old key still verifies and the new one signs; a cancel is too late now.
    await waitForStep('issuer', 'grace_period');
    expect((await http('POST', '/v1/admin/rotations/issuer/cancel', { by: 'carol' })).status).toBe(202);
    const finished = await Promise.all(statusUrls.map(waitRegistered));
    for (const done of finished) expect(done).toMatchObject({ state: 'completed', status: 'anchored' });
    const report = await result('issuer', started.runId);
    expect(report.refused).toEqual([expect.objectContaining({ signal: 'cancel', by: 'carol', reason: expect.stringMatching(/cutover/) })]);
    expect(report.cancelledAt).toBeUndefined();
    expect(report).toMatchObject({
      outcome: 'completed',
      approvedBy: 'bob',
      oldKey: { keyIdentifier: 'issuer', pubKeyHex: oldPub },
      newKey: { keyIdentifier: 'issuer-2', pubKeyHex: newPub },
    });
    expect(Date.parse(report.retiredAt!) - Date.parse(report.cutoverAt!)).toBeGreaterThanOrEqual(5_000);
    await recordHistoryIfAsked(stack.deps.temporal, 'kms-rotation-issuer', 'kms-rotation-issuer-completed', started.runId);
    expect(await keyState('issuer', 'issuer')).toBe('retired');
    expect(await keyState('issuer', 'issuer-2')).toBe('active');

    const after = await waitRegistered(await register('PP-ROT-I4'));
    expect(after).toMatchObject({ status: 'anchored' });
    const patches = patchModel(stack.deps.mongo);
    expect((await patches.findById('PP-ROT-I4').lean())!.issuerSignature).toMatchObject({ keyIdentifier: 'issuer-2', pubKeyHex: newPub });
    expect((await patches.findById('PP-ROT-I0').lean())!.issuerSignature).toMatchObject({ keyIdentifier: 'issuer', pubKeyHex: oldPub });
    // Every record verifies: the one signed before, those signed across the cutover, the one after.
    for (const uid of ['PP-ROT-I0', ...during, 'PP-ROT-I4']) {
      const verdict = await verify(uid);
      expect(verdict).toMatchObject({ status: 'authentic', issuerSignature: { valid: true } });
      expect([oldPub, newPub]).toContain(verdict.issuerSignature!.pubKeyHex);
    }
    // A key that was only staged and withdrawn never counts as the issuer's: the key directory leaves it out.
    const directory = await loadKeyDirectory({ keys: observer, kms: chainClientsFromConfig(stack.deps.config).kms });
    expect(directory.keys.map((k) => k.publicKey)).toEqual(expect.arrayContaining([oldPub, newPub]));
    expect(directory.keys.map((k) => k.publicKey)).not.toContain(stack.kms.keys.describe('issuer-withdrawn').pubKeyHex);
  });

  it('rotates the funding key: auto-approves, sweeps the old address into the new one, and top-ups use the new key', async () => {
    const oldAddress = stack.accounts.funding.address;
    const newAddress = PublicKey.fromString(stack.kms.keys.describe('funding-2').pubKeyHex).toAddress('testnet');
    const utxos = utxoModel(stack.deps.mongo);
    expect(await utxos.countDocuments({ keyIdentifier: 'funding', status: 'available' })).toBeGreaterThan(0);

    const started = await startKmsRotation(
      stack.deps.temporal,
      request('funding', 'funding-2', { autoApproveAfter: '2s', gracePeriodDays: 0 }),
    );
    const report = await result('funding', started.runId);
    expect(report).toMatchObject({
      outcome: 'completed',
      approvedBy: 'auto-approval',
      oldKey: { keyIdentifier: 'funding', address: oldAddress },
      newKey: { keyIdentifier: 'funding-2', address: newAddress },
    });
    expect(Date.parse(report.approvedAt!) - Date.parse(report.stagedAt!)).toBeGreaterThanOrEqual(2_000);
    const moved = report.sweeps.find((s) => s.outcome === 'completed')!;
    expect(moved).toMatchObject({ changeAddress: oldAddress, destinationAddress: newAddress, remaining: 0 });
    await recordHistoryIfAsked(stack.deps.temporal, 'kms-rotation-funding', 'kms-rotation-funding-completed', started.runId);

    // The old address holds nothing the pool could spend; the swept output is in the pool under the new key.
    expect(await utxos.countDocuments({ keyIdentifier: 'funding', status: 'available' })).toBe(0);
    expect(await utxos.countDocuments({ txid: moved.transaction!.txid, keyIdentifier: 'funding-2', status: 'available' })).toBe(1);
    const onChain = (await (await fetch(`${stack.simulator.baseUrl}/v1/bsv/test/address/${newAddress}/unspent`)).json()) as {
      tx_hash: string;
    }[];
    expect(onChain.map((u) => u.tx_hash)).toContain(moved.transaction!.txid);

    // The pool snapshot shows the new key and address, without a restart.
    const health = await http('GET', '/v1/admin/utxo-health');
    expect(health.body.funding).toMatchObject({ keyIdentifier: 'funding-2', address: newAddress });
    expect(health.body.change).toMatchObject({ keyIdentifier: 'funding-2', address: newAddress });

    // A top-up splits from the new key's outputs, and its outputs belong to the new key.
    const topUp = await startTopUp(stack.deps.temporal, stack.deps.config.pool.fundingKeyIdentifier, { requestedBy: 'test' });
    const topUpDone = await waitForPoolOperation(stack.deps.temporal, topUp.workflowId, topUp.runId, { pollMs: 100 });
    expect(topUpDone.state).toBe('completed');
    const split = (topUpDone as { result: TopUpReport }).result;
    expect(split.outcome).toBe('completed');
    expect(await utxos.countDocuments({ txid: split.transaction!.txid, keyIdentifier: 'funding-2' })).toBeGreaterThan(1);
    expect(await utxos.countDocuments({ txid: split.transaction!.txid, keyIdentifier: 'funding' })).toBe(0);

    // Registrations anchor with the new key's outputs.
    expect(await waitRegistered(await register('PP-ROT-F1'))).toMatchObject({ status: 'anchored' });
    const anchor = (await patchModel(stack.deps.mongo).findById('PP-ROT-F1').lean())!.anchor!;
    expect(await utxos.countDocuments({ spentBy: anchor.txid, keyIdentifier: 'funding-2' })).toBe(1);
  });

  it('rotates the SVD key from the CLI while owners log in: every login succeeds, and the API derives with the new key after', async () => {
    // An owner logs in over and over through the API (SVD: the KMS derives each session secret) during the rotation.
    const ownerKey = PrivateKey.fromRandom();
    const userId = new Types.ObjectId().toHexString();
    expect((await http('POST', '/api/svd/register', { userId, pmcHex: ownerKey.toPublicKey().toString() })).status).toBe(201);
    const svd = new SvdClient({ baseUrl: api.baseUrl });
    const loginErrors: string[] = [];
    let logins = 0;
    let stopLogins = false;
    const loginLoop = (async () => {
      while (!stopLogins) {
        try {
          const session = await svd.login(userId, ownerKey.toHex());
          const probe = await fetch(`${api.baseUrl}/api/owner/session`, { headers: { authorization: `Bearer ${session.token}` } });
          if (probe.status !== 200) loginErrors.push(`session probe ${probe.status}`);
          logins += 1;
        } catch (err) {
          loginErrors.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const env = testEnvironment({
      ...stack.env,
      MONGODB_URI: stack.deps.config.mongo.uri,
      LOG_LEVEL: 'warn',
      KEY_SETTINGS_CACHE_MS: '200',
    });
    const start = await patchproof(
      ['rotate', 'kms', '--purpose', 'svd', '--new-key-id', 'svd-2', '--grace-days', '0', '--auto-approve-after', 'off'],
      env,
    );
    expect(start.code).toBe(0);
    expect(start.stdout).toContain('started svd rotation: workflow kms-rotation-svd');
    const again = await patchproof(['rotate', 'kms', '--purpose', 'svd', '--new-key-id', 'svd-3'], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('refused: a svd rotation is already running as kms-rotation-svd');

    await waitForStep('svd', 'awaiting_approval');
    // The operator who started it cannot approve it with the same credential…
    const selfApproval = await patchproof(['rotate', 'approve', '--purpose', 'svd'], env);
    expect(selfApproval.code).toBe(1);
    expect(selfApproval.stderr).toContain('refused (APPROVER_IS_STARTER)');
    expect((await waitForStep('svd', 'awaiting_approval')).approvedBy).toBeUndefined();
    // …so a single operator makes a second operator key (as docs/ROTATION.md says) and approves with it.
    const created = await patchproof(
      ['--json', 'api-keys', 'create', '--tenant', 'default', '--name', 'rotation approver', '--scopes', 'admin'],
      env,
    );
    expect(created.code).toBe(0);
    const approver = JSON.parse(created.stdout) as { key: string; apiKey: { id: string } };
    const approve = await http('POST', '/v1/admin/rotations/svd/approve', { by: 'second-operator' }, approver.key);
    expect(approve.status).toBe(202);
    const runId = (await stack.deps.temporal.workflow.getHandle('kms-rotation-svd').describe()).runId;
    const report = await result('svd', runId);
    expect(report).toMatchObject({
      outcome: 'completed',
      newKey: { keyIdentifier: 'svd-2' },
      startedByKeyId: expect.stringMatching(/^cli:/),
      approvedBy: 'second-operator',
      approvedByKeyId: approver.apiKey.id,
    });
    await recordHistoryIfAsked(stack.deps.temporal, 'kms-rotation-svd', 'kms-rotation-svd-four-eyes-completed', runId);
    stopLogins = true;
    await loginLoop;
    expect(loginErrors).toEqual([]);
    expect(logins).toBeGreaterThan(5);
    const derivedWith = new Set(stack.kms.requests.filter((r) => r.path === '/svd/derive-secret').flatMap((r) => r.keyIdentifiers));
    expect(derivedWith).toEqual(new Set(['svd', 'svd-2']));

    const status = await patchproof(['--json', 'rotate', 'status', '--purpose', 'svd'], env);
    expect(status.code).toBe(0);
    const shown = JSON.parse(status.stdout) as {
      keys: { purpose: string; active: string; source: string; keys: { keyIdentifier: string; state: string }[] }[];
    };
    expect(shown.keys).toEqual([
      expect.objectContaining({
        purpose: 'svd',
        active: 'svd-2',
        source: 'rotation',
        keys: [
          expect.objectContaining({ keyIdentifier: 'svd', state: 'retired' }),
          expect.objectContaining({ keyIdentifier: 'svd-2', state: 'active' }),
        ],
      }),
    ]);

    // The API's SVD secret derivation follows the key settings.
    const keys = keyringFromConfig(stack.deps.config, stack.deps.mongo);
    const deriver = createSvdSecretDeriver(stack.deps.config.ownerAuth.svd, chainClientsFromConfig(stack.deps.config).kms, () =>
      keys.activeKeyId('svd'),
    );
    const seen = stack.kms.requests.length;
    const challenge = makeChallenge(Math.floor(Date.now() / 1000));
    const pmc = PublicKey.fromString(stack.kms.keys.ensure('owner-test').pubKeyHex);
    const pmcBytes = Uint8Array.from(pmc.encode(true) as number[]);
    await deriver.derive(challenge, pmc.toString(), pmcBytes, pmcBytes);
    expect(stack.kms.requests.slice(seen).find((r) => r.path === '/svd/derive-secret')?.keyIdentifiers).toEqual(['svd-2']);
  });

  it('rotates the JWT key: tokens in flight stay valid in every process throughout, and the old kid is removed after', async () => {
    const config = stack.deps.config;
    const processKeyring = (): TokenKeyring => {
      const live = createLiveJwtKeys({
        keyring: keyringFromConfig(config, stack.deps.mongo),
        env: config.ownerAuth.jwt,
        jwtSecret: config.auth.jwtSecret,
        autoRefresh: true,
        refreshMs: config.rotation.cacheMs,
      });
      return createTokenKeyring(config.ownerAuth.jwt, 0, Date.now, () => live.current());
    };
    const [one, two] = [processKeyring(), processKeyring()];
    await new Promise((r) => setTimeout(r, 300));
    const oldKid = one.activeKid;
    let n = 0;
    const issue = (keyring: TokenKeyring) => keyring.issue({ type: 'svd-session', userId: 'ab'.repeat(12), jti: `t-${(n += 1)}` });
    const inFlight: { token: string; expiresAt: number }[] = [];
    let failures = 0;
    const started = await startJwtRotation(
      stack.deps.temporal,
      jwtRotationInput(config, { requestedBy: 'test', trigger: 'test', newKid: 'jwt-2' }),
    );
    const handle = stack.deps.temporal.workflow.getHandle(JWT_ROTATION_WORKFLOW_ID, started.runId);
    let closed = false;
    const done = handle.result().finally(() => (closed = true)) as Promise<JwtRotationStatus>;
    while (!closed) {
      // Each "process" issues a token the other verifies, and every unexpired token issued so far still verifies.
      inFlight.push(issue(one), issue(two));
      // Tokens that expire within the next moment are left out: their expiry is not what this test is about.
      for (const t of inFlight.filter((x) => x.expiresAt * 1000 - Date.now() > 300)) {
        for (const keyring of [one, two]) {
          try {
            keyring.verify(t.token, 'svd-session');
          } catch {
            failures += 1;
          }
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const report = await done;
    expect(failures).toBe(0);
    expect(report).toMatchObject({ step: 'completed', newKid: 'jwt-2', previousKid: oldKid });
    await recordHistoryIfAsked(stack.deps.temporal, JWT_ROTATION_WORKFLOW_ID, 'jwt-rotation-completed', started.runId);
    await new Promise((r) => setTimeout(r, 500));
    expect(one.activeKid).toBe('jwt-2');
    // The API picked the new kid up without a restart.
    expect(((await (await fetch(`${api.baseUrl}/api/svd/kid`)).json()) as { kid: string }).kid).toBe('jwt-2');
    // A token under the removed kid no longer verifies, even though JWT_KEYS still lists it.
    const forged = jwt.sign({ typ: 'svd-session', sub: 'ab'.repeat(12), jti: 'late' }, config.ownerAuth.jwt.keys[oldKid]!, {
      algorithm: 'HS256',
      keyid: oldKid,
      issuer: config.ownerAuth.jwt.issuer,
      audience: config.ownerAuth.jwt.audience,
      expiresIn: 60,
    });
    let refusal: unknown;
    try {
      two.verify(forged, 'svd-session');
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'unknown_kid' } });
    expect(two.verify(issue(one).token, 'svd-session')).toMatchObject({ kid: 'jwt-2' });
    // The rotated kid's secret is sealed in the store, not stored in clear, and the admin overview never shows it.
    const stored = (await rotationKeyModel(stack.deps.mongo).findById('jwt:jwt-2').lean())!;
    expect(stored.sealedSecret).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const overview = await http('GET', '/v1/admin/rotations');
    expect(overview.status).toBe(200);
    expect(JSON.stringify(overview.body)).not.toContain(stored.sealedSecret!.split('.')[2]!);
    expect(overview.body.keys).toContainEqual(
      expect.objectContaining({
        purpose: 'jwt',
        active: 'jwt-2',
        source: 'rotation',
        keys: expect.arrayContaining([expect.objectContaining({ keyIdentifier: oldKid, state: 'retired' })]),
      }),
    );
    // Nothing runs any more: approving answers 404.
    expect((await http('POST', '/v1/admin/rotations/issuer/approve', { by: 'dave' })).status).toBe(404);
  });

  it('fails the start-up check when the KMS cannot serve the active key', async () => {
    const keys = keyringFromConfig(stack.deps.config, stack.deps.mongo);
    const kms = chainClientsFromConfig(stack.deps.config).kms;
    await expect(assertActiveKeysAvailable(keys, kms, ['issuer', 'funding', 'svd'])).resolves.toBeUndefined();
    const unreachable = chainClientsFromConfig({
      ...stack.deps.config,
      kms: { ...stack.deps.config.kms, signUrl: 'http://127.0.0.1:9', retryAttempts: 1 },
    }).kms;
    await expect(assertActiveKeysAvailable(keys, unreachable, ['issuer'])).rejects.toThrow(/issuer key issuer-2/);
    // An active key the KMS no longer has (an unknown pinned version) fails too.
    await stack.deps.mongo.collection('active_keys').updateOne({ _id: 'issuer' as never }, { $set: { keyIdentifier: 'issuer-2@9' } });
    keys.forget();
    await expect(assertActiveKeysAvailable(keys, kms, ['issuer'])).rejects.toThrow(/issuer-2@9/);
    await stack.deps.mongo.collection('active_keys').updateOne({ _id: 'issuer' as never }, { $set: { keyIdentifier: 'issuer-2' } });
  });
});

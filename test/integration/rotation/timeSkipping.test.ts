import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createDevKms, type DevKms } from '../../../ops/stand-ins/dev-kms/server';
import { jwtRotationInput, kmsRotationInput } from '../../../src/rotation/launch';
import { rotationKeyModel } from '../../../src/rotation/models';
import { createMainWorker } from '../../../workers/mainWorker';
import type { JwtRotationStatus, KmsRotationReport } from '../../../workflows/rotation/shared';
import { listen, type Listening } from '../../support/http';
import { activityDeps, connectTestDeps, type TestDeps } from '../../support/stack';
import { testEnv } from '../../support/testEnv';
import { startTimeSkippingEnv } from '../../support/timeSkipping';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TASK_QUEUE = 'rotation-time-skipping';

/**
 * Rotations wait days (grace period) and hours (auto-approval, token lifetimes): on the Java time-skipping server
 * those timers pass at once, with the production workflows and real activities against the dev KMS.
 */
describe('key rotations on the time-skipping test server', () => {
  let env: TestWorkflowEnvironment;
  let deps: TestDeps;
  let kms: DevKms;
  let kmsServer: Listening;
  /** A worker runs once (runUntil shuts it down), so each test gets its own. */
  const newWorker = (): Promise<Worker> =>
    createMainWorker({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      deps: activityDeps(deps),
      workflowBundlePath: testEnv('workflowBundle'),
      taskQueue: TASK_QUEUE,
      shutdownGraceMs: 1_000,
    });

  beforeAll(async () => {
    kms = createDevKms({
      dataDir: mkdtempSync(path.join(tmpdir(), 'rotation-kms-')),
      apiKey: 'rotation-kms-key',
      keys: ['issuer', 'issuer-ts'],
    });
    kmsServer = await listen(kms.app);
    deps = await connectTestDeps('worker', {
      KMS_SIGN_URL: kmsServer.baseUrl,
      KMS_API_KEY: 'rotation-kms-key',
      KEY_SETTINGS_CACHE_MS: '5000',
    });
    env = await startTimeSkippingEnv();
  }, 60_000);

  afterAll(async () => {
    await env?.teardown();
    await kmsServer?.close();
    await deps?.close();
  });

  it('auto-approves an issuer rotation after the configured delay and retires the old key after a 7-day grace period', async () => {
    const wallStarted = Date.now();
    const input = kmsRotationInput(deps.config, {
      purpose: 'issuer',
      newKeyIdentifier: 'issuer-ts',
      requestedBy: 'test',
      startedByKeyId: 'test',
      trigger: 'test',
      autoApproveAfter: '24h',
      gracePeriodDays: 7,
      disableOldKeyInKms: true,
    });
    const report = await (
      await newWorker()
    ).runUntil(
      env.client.workflow.execute('kmsRotationWorkflow', {
        workflowId: 'ts-kms-rotation-issuer',
        taskQueue: TASK_QUEUE,
        args: [input],
      }) as Promise<KmsRotationReport>,
    );
    expect(report).toMatchObject({ outcome: 'completed', approvedBy: 'auto-approval', oldKey: { keyIdentifier: 'issuer' } });
    expect(Date.parse(report.approvedAt!) - Date.parse(report.stagedAt!)).toBeGreaterThanOrEqual(DAY);
    expect(Date.parse(report.retiredAt!) - Date.parse(report.cutoverAt!)).toBeGreaterThanOrEqual(7 * DAY);
    expect(Date.now() - wallStarted).toBeLessThan(30_000);

    const keys = rotationKeyModel(deps.mongo);
    expect((await keys.findById('issuer:issuer').lean())?.state).toBe('retired');
    expect((await keys.findById('issuer:issuer-ts').lean())?.state).toBe('active');
    // The retirement hook disabled the old key in the KMS: it no longer signs.
    expect(() => kms.keys.describe('issuer')).not.toThrow();
    const refused = await fetch(`${kmsServer.baseUrl}/sign`, {
      method: 'POST',
      headers: { authorization: 'Bearer rotation-kms-key', 'content-type': 'application/json' },
      body: JSON.stringify({ requests: [{ keyIdentifier: 'issuer', sighash: '00'.repeat(32) }] }),
    });
    expect(refused.status).toBe(403);
  });

  it('keeps the previous JWT kid until the longest token lifetime has passed after activation, then removes it', async () => {
    const input = jwtRotationInput(deps.config, { requestedBy: 'test', trigger: 'test', newKid: 'jwt-ts' });
    const report = await (
      await newWorker()
    ).runUntil(
      env.client.workflow.execute('jwtKeyRotationWorkflow', {
        workflowId: 'ts-jwt-rotation',
        taskQueue: TASK_QUEUE,
        args: [input],
      }) as Promise<JwtRotationStatus>,
    );
    const jwt = deps.config.ownerAuth.jwt;
    const lifetimeMs = (Math.max(jwt.svdSessionTtlSec, jwt.emailTokenTtlSec) + deps.config.ownerAuth.svd.clockSkewSec) * 1000;
    expect(report).toMatchObject({ step: 'completed', newKid: 'jwt-ts', previousKid: jwt.activeKid });
    expect(Date.parse(report.removedAt!) - Date.parse(report.activatedAt!)).toBeGreaterThanOrEqual(lifetimeMs);
    expect((await rotationKeyModel(deps.mongo).findById(`jwt:${jwt.activeKid}`).lean())?.state).toBe('retired');
  });
});

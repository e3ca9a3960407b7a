import { type TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { merkleProofs } from '../../../src/anchoring/merkle';
import { anchorAssignedSignal, type AnchorRequest } from '../../../workflows/anchoring/shared';
import type { RegistrationResult } from '../../../workflows/registration/shared';
import { testEnv } from '../../support/testEnv';
import { startTimeSkippingEnv } from '../../support/timeSkipping';

/**
 * The registration's confirmation wait on the Java time-skipping server: blocks come every ten virtual minutes and
 * the workflow polls on durable timers, so six confirmations take an hour of workflow time and seconds of wall time.
 * Activities are stand-ins here (workflow logic only); the real ones run in registration.test.ts.
 */
describe('registration confirmation wait (time skipping)', () => {
  let env: TestWorkflowEnvironment;

  beforeAll(async () => {
    env = await startTimeSkippingEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.teardown();
  });

  it('waits for ANCHOR_CONFIRMATIONS on durable timers, then marks the record anchored once', async () => {
    const recordHash = 'ab'.repeat(32);
    const proof = merkleProofs([recordHash, 'cd'.repeat(32)])[0]!;
    const txid = 'ef'.repeat(32);
    const BLOCK_MS = 10 * 60_000;
    let broadcastAt: number | undefined;
    const confirmationPolls: number[] = [];
    const anchoredMarks: unknown[] = [];

    const activities = {
      persistPendingRegistration: () => Promise.resolve({ recordHash }),
      signRegistrationRecord: () => Promise.resolve({ signatureDerHex: '30', pubKeyHex: '02' }),
      anchoringPolicy: () => Promise.resolve({ mode: 'batch' as const, minConfirmations: 6, pollSeconds: 600 }),
      // The batcher's answer: the record's proof in a broadcast batch transaction.
      requestBatchAnchor: async (request: AnchorRequest) => {
        broadcastAt = await env.currentTimeMs();
        await env.client.workflow
          .getHandle(request.subjectWorkflowId)
          .signal(anchorAssignedSignal, { ok: true, txid, vout: 0, proof, batchWorkflowId: 'anchor-batch-test' });
      },
      // One block every ten virtual minutes after the broadcast.
      recordConfirmations: async () => {
        const now = await env.currentTimeMs();
        confirmationPolls.push(now);
        const confirmations = Math.floor((now - broadcastAt!) / BLOCK_MS);
        return { confirmations, blockHeight: confirmations > 0 ? 1000 : null };
      },
      markRegistrationAnchoring: () => Promise.resolve(),
      markRegistrationAnchored: (input: unknown) => {
        anchoredMarks.push(input);
        return Promise.resolve();
      },
      markRegistrationFailed: () => Promise.resolve(),
    };
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue: 'ts-registration',
      workflowBundle: { codePath: testEnv('workflowBundle') },
      activities,
    });
    const wallStarted = Date.now();
    const virtualStarted = await env.currentTimeMs();
    const result = (await worker.runUntil(
      env.client.workflow.execute('registrationWorkflow', {
        workflowId: 'registration-TS-CONF-1',
        taskQueue: 'ts-registration',
        args: [{ request: { product: { uid_tag_id: 'TS-CONF-1' }, auth: { owner: 'n/a' } }, requestHash: '00'.repeat(32) }],
      }),
    )) as RegistrationResult;

    expect(result).toMatchObject({ uid: 'TS-CONF-1', txid, proof, recordHash });
    expect(result.confirmations).toBeGreaterThanOrEqual(6);
    expect((await env.currentTimeMs()) - virtualStarted).toBeGreaterThanOrEqual(6 * BLOCK_MS);
    expect(Date.now() - wallStarted).toBeLessThan(60_000);
    // Polls are the durable timer's: ten virtual minutes apart, about one per block, not a busy loop.
    const gaps = confirmationPolls.slice(1).map((t, i) => t - confirmationPolls[i]!);
    expect(gaps.every((gap) => gap >= 600_000)).toBe(true);
    expect(confirmationPolls.length).toBeLessThanOrEqual(8);
    expect(anchoredMarks).toEqual([{ uid: 'TS-CONF-1', txid, vout: 0, proof, blockHeight: 1000 }]);
  }, 120_000);
});

import { type TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { merkleProofs } from '../../../src/anchoring/merkle';
import { anchorBatchWorkflow } from '../../../workflows';
import type { RegistrationResult } from '../../../workflows/registration/shared';
import { fakeChainActivities, registrationInput, registrationRecordHash, registrationStores } from '../../support/workflowFixtures';
import { testEnv } from '../../support/testEnv';
import { startTimeSkippingEnv } from '../../support/timeSkipping';

/**
 * The registration's confirmation wait on the Java time-skipping server: blocks come every ten virtual minutes and
 * its anchor batch polls on durable timers, so six confirmations take an hour of workflow time and seconds of wall time.
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

  it('waits for ANCHOR_CONFIRMATIONS on durable timers in the anchor batch, then marks the record anchored once', async () => {
    const uid = 'TS-CONF-1';
    const recordHash = registrationRecordHash(uid);
    const BLOCK_MS = 10 * 60_000;
    const policy = { mode: 'batch' as const, minConfirmations: 6, pollSeconds: 600 };
    const chain = fakeChainActivities(policy);
    let broadcastAt: number | undefined;
    const confirmationPolls: number[] = [];
    const anchoredMarks: unknown[] = [];
    const taskQueue = 'ts-registration';

    const activities = {
      ...chain,
      ...registrationStores(async (request) => {
        // The batcher's cut: a batch of this one record.
        await env.client.workflow.start(anchorBatchWorkflow, {
          taskQueue,
          workflowId: 'anchor-batch-ts-conf',
          args: [{ records: [request] }],
        });
      }),
      broadcastTransaction: async (signed: Parameters<typeof chain.broadcastTransaction>[0]) => {
        broadcastAt = await env.currentTimeMs();
        return chain.broadcastTransaction(signed);
      },
      // One block every ten virtual minutes after the broadcast.
      recordConfirmations: async () => {
        const now = await env.currentTimeMs();
        confirmationPolls.push(now);
        const confirmations = Math.floor((now - broadcastAt!) / BLOCK_MS);
        return { confirmations, blockHeight: confirmations > 0 ? 1000 : null };
      },
      markRegistrationsAnchored: (input: { records: unknown[] }) => {
        anchoredMarks.push(input);
        return Promise.resolve({ anchored: input.records.length });
      },
    };
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue,
      workflowBundle: { codePath: testEnv('workflowBundle') },
      activities,
    });
    const wallStarted = Date.now();
    const virtualStarted = await env.currentTimeMs();
    const result = (await worker.runUntil(
      env.client.workflow.execute('registrationWorkflow', { workflowId: `registration-${uid}`, taskQueue, args: [registrationInput(uid)] }),
    )) as RegistrationResult;

    expect(result).toMatchObject({ uid, recordHash, proof: merkleProofs([recordHash])[0] });
    expect(result.confirmations).toBeGreaterThanOrEqual(6);
    expect((await env.currentTimeMs()) - virtualStarted).toBeGreaterThanOrEqual(6 * BLOCK_MS);
    expect(Date.now() - wallStarted).toBeLessThan(60_000);
    // Polls are the durable timer's: ten virtual minutes apart, about one per block, not a busy loop.
    const gaps = confirmationPolls.slice(1).map((t, i) => t - confirmationPolls[i]!);
    expect(gaps.every((gap) => gap >= 600_000)).toBe(true);
    expect(confirmationPolls.length).toBeLessThanOrEqual(9);
    // The batch marked the record anchored once, with the block it confirmed in.
    expect(anchoredMarks).toEqual([
      { txid: result.txid, blockHeight: 1000, broadcastAt: expect.any(String), records: [{ uid, recordHash }] },
    ]);
  }, 120_000);
});

import { type WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { anchorBatchWorkflowId } from '../../../src/anchoring/ids';
import { verifyMerkleProof } from '../../../src/anchoring/merkle';
import { anchorBatcherWorkflow, anchorBatchWorkflow, registrationWorkflow } from '../../../workflows';
import {
  anchorBatcherStateQuery,
  anchorRequestSignal,
  type AnchorBatcherInput,
  type AnchorBatcherState,
  type AnchoringPolicy,
  type AnchorRequest,
} from '../../../workflows/anchoring/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import {
  chainShortOfFunds,
  fakeChainActivities,
  hex64,
  nonRetryable,
  registrationInput,
  registrationRecordHash,
  registrationStores,
  txidOfPlan,
} from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const BATCH: AnchoringPolicy = { mode: 'batch', minConfirmations: 2, pollSeconds: 30 };
const BATCHER_ID = 'anchor-batcher';

/** Polls the batcher's query until `done` holds (time stays still meanwhile: nothing awaits a result). */
async function batcherState(env: TestWorkflowEnvironment, workflowId: string, done: (s: AnchorBatcherState) => boolean) {
  for (let i = 0; ; i++) {
    const state = await env.client.workflow.getHandle(workflowId).query(anchorBatcherStateQuery);
    if (done(state) || i === 100) return state;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether a batch still runs, asked of the test server as the real activity asks Temporal. */
function batchOpenOn(server: { env: TestWorkflowEnvironment }) {
  return async ({ workflowId }: { workflowId: string }) =>
    (await server.env.client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
}

/** Record activities plus a requestBatchAnchor that signals-with-start the batcher on the test's task queue. */
function batchedRegistrations(
  env: TestWorkflowEnvironment,
  limits: AnchorBatcherInput,
  batcherId: string,
  chain: ReturnType<typeof fakeChainActivities> = fakeChainActivities(BATCH),
) {
  let taskQueue = '';
  const activities = mockActivities({
    ...registrationStores(),
    ...chain,
    anchorBatchOpen: batchOpenOn({ env }),
    requestBatchAnchor: async (request) => {
      await env.client.workflow.signalWithStart(anchorBatcherWorkflow, {
        workflowId: batcherId,
        taskQueue,
        args: [limits],
        signal: anchorRequestSignal,
        signalArgs: [{ ...request, limits }],
      });
    },
  });
  return { activities, setTaskQueue: (queue: string) => (taskQueue = queue) };
}

/** The batcher's state once its last batch has finished (the batch waits for its change output's confirmations). */
async function closeBatcher(env: TestWorkflowEnvironment, batcherId: string): Promise<AnchorBatcherState> {
  const state = await env.client.workflow.getHandle(batcherId).query(anchorBatcherStateQuery);
  if (state.lastBatchWorkflowId) await env.client.workflow.getHandle(state.lastBatchWorkflowId).result();
  return state;
}

/** Registers one uid through the batcher on a fresh task queue and waits for its batch to finish. */
async function registerThroughBatcher(
  env: TestWorkflowEnvironment,
  { activities, setTaskQueue }: ReturnType<typeof batchedRegistrations>,
  uid: string,
  batcherId: string,
) {
  return withWorker(env, activities, async (taskQueue) => {
    setTaskQueue(taskQueue);
    const result = await env.client.workflow.execute(registrationWorkflow, {
      taskQueue,
      workflowId: `registration-${uid}`,
      args: [registrationInput(uid)],
    });
    await closeBatcher(env, batcherId);
    return result;
  });
}

describe('anchor batching', () => {
  const server = timeSkippingEnvForBlock();

  it('anchors records from two registrations in one batch transaction, each with its own proof of the same root', async () => {
    const limits = { maxRecords: 2, maxWaitSeconds: 3600 };
    const batcherId = `${BATCHER_ID}-full`;
    const { activities, setTaskQueue } = batchedRegistrations(server.env, limits, batcherId);
    const uids = ['batch-a', 'batch-b'];
    const { results, state } = await withWorker(server.env, activities, async (taskQueue) => {
      setTaskQueue(taskQueue);
      const handles = await Promise.all(
        uids.map((uid) =>
          server.env.client.workflow.start(registrationWorkflow, {
            taskQueue,
            workflowId: `registration-${uid}`,
            args: [registrationInput(uid)],
          }),
        ),
      );
      const results = [];
      for (const handle of handles) results.push(await handle.result());
      const state = await closeBatcher(server.env, batcherId);
      return { results, state };
    });

    const txid = txidOfPlan(activities.signTransaction.mock.calls[0]![0]);
    expect(activities.signTransaction).toHaveBeenCalledTimes(1);
    expect(activities.planAnchor).toHaveBeenCalledWith(
      expect.objectContaining({ recordHashes: expect.arrayContaining(uids.map(registrationRecordHash)), round: 1 }),
    );
    results.forEach((result, i) => {
      expect(result).toMatchObject({ uid: uids[i], txid });
      expect(verifyMerkleProof(registrationRecordHash(uids[i]!), result.proof)).toBe(true);
      expect(result.confirmations).toBeGreaterThanOrEqual(BATCH.minConfirmations);
    });
    expect(results[0]!.proof.root).toBe(results[1]!.proof.root);
    expect(results[0]!.proof.index).not.toBe(results[1]!.proof.index);
    expect(state).toMatchObject({ pending: 0, batchesThisRun: 1 });
    expect(uids.map((uid) => anchorBatchWorkflowId(`registration:${uid}`, 2))).toContain(state.lastBatchWorkflowId);
  });

  it('anchors a lone record once the batch’s maximum wait has passed', async () => {
    const limits = { maxRecords: 50, maxWaitSeconds: 900 };
    const batcherId = `${BATCHER_ID}-timer`;
    const { activities, setTaskQueue } = batchedRegistrations(server.env, limits, batcherId);
    const uid = 'batch-alone';
    const startedAt = await server.env.currentTimeMs();
    const result = await registerThroughBatcher(server.env, { activities, setTaskQueue }, uid, batcherId);
    expect(result.txid).toBe(txidOfPlan(activities.signTransaction.mock.calls[0]![0]));
    expect(result.proof.count).toBe(1);
    expect((await server.env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(limits.maxWaitSeconds * 1000);
  });
});

/**
 * A fresh server for the batch workflow itself: after the two batcher runs above, this server's clock stops
 * skipping (the Java test server loses track of a time-skipping lock), and the batches' timers would pass in real time.
 */
describe('anchor batches', () => {
  const server = timeSkippingEnvForBlock();
  const batchOpen = batchOpenOn(server);

  it('ignores a repeated request for a key it holds and adopts the limits a request brings', async () => {
    const batcherId = `${BATCHER_ID}-dedup`;
    const request = (key: string): AnchorRequest => ({ key, recordHash: hex64(key), subjectWorkflowId: `closed-${key}` });
    const activities = mockActivities(fakeChainActivities(BATCH));
    const { held, after, batch } = await withWorker(server.env, activities, async (taskQueue) => {
      const batcher = await server.env.client.workflow.start(anchorBatcherWorkflow, {
        workflowId: batcherId,
        taskQueue,
        args: [{ maxRecords: 100, maxWaitSeconds: 3600 }],
      });
      await batcher.signal(anchorRequestSignal, request('key-1'));
      await batcher.signal(anchorRequestSignal, request('key-1'));
      const held = await batcherState(server.env, batcherId, (s) => s.pending === 1);
      await batcher.signal(anchorRequestSignal, { ...request('key-2'), limits: { maxRecords: 2, maxWaitSeconds: 3600 } });
      const after = await batcherState(server.env, batcherId, (s) => s.batchesThisRun === 1);
      // The records' workflows are gone: the batch hands out to no one and still anchors.
      const batch = await server.env.client.workflow.getHandle(after.lastBatchWorkflowId!).result();
      return { held, after, batch };
    });
    expect(held).toEqual({ pending: 1, batchesThisRun: 0 });
    expect(after).toEqual({ pending: 0, batchesThisRun: 1, lastBatchWorkflowId: anchorBatchWorkflowId('key-1', 2) });
    expect(activities.planAnchor).toHaveBeenCalledWith(expect.objectContaining({ recordHashes: [hex64('key-1'), hex64('key-2')] }));
    expect(batch).toMatchObject({ count: 2, txid: txidOfPlan(activities.signTransaction.mock.calls[0]![0]) });
  });

  it('rebuilds with other inputs when the node reports the inputs missing, excluding the refused ones', async () => {
    const chain = fakeChainActivities(BATCH);
    let refusedTxid = '';
    const activities = mockActivities({
      ...chain,
      broadcastTransaction: async (signed) => {
        if (refusedTxid === '' || refusedTxid === signed.txid) {
          refusedTxid = signed.txid;
          throw nonRetryable('MissingInputs');
        }
        return chain.broadcastTransaction(signed);
      },
    });
    const records = [{ key: 'retry-1', recordHash: hex64('retry-1'), subjectWorkflowId: 'closed-retry-1' }];
    const result = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(anchorBatchWorkflow, { taskQueue, workflowId: 'anchor-batch-retry', args: [{ records }] }),
    );
    const [first, second] = activities.planAnchor.mock.calls.map(([call]) => call);
    const refusedInput = activities.signTransaction.mock.calls[0]![0].inputs[0]!;
    expect(first).toMatchObject({ round: 1 });
    expect(first).not.toHaveProperty('excludeUtxoIds');
    expect(second).toMatchObject({ round: 2, excludeUtxoIds: [`${refusedInput.txid}:${refusedInput.vout}`] });
    expect(activities.giveBackReservations).toHaveBeenCalledTimes(1);
    expect(result.txid).toBe(txidOfPlan(activities.signTransaction.mock.calls[1]![0]));
    expect(result.txid).not.toBe(refusedTxid);
  });

  it('fails after three refused rounds and tells every waiting record why', async () => {
    const uid = 'batch-refused';
    const activities = mockActivities({
      ...registrationStores(),
      ...fakeChainActivities(BATCH),
      broadcastTransaction: async () => {
        throw nonRetryable('MissingInputs');
      },
      // The test hands the record to the batch itself.
      requestBatchAnchor: async () => undefined,
      anchorBatchOpen: batchOpen,
    });
    const { batchFailure, registrationFailure } = await withWorker(server.env, activities, async (taskQueue) => {
      const registration = await server.env.client.workflow.start(registrationWorkflow, {
        taskQueue,
        workflowId: `registration-${uid}`,
        args: [registrationInput(uid)],
      });
      const records = [{ key: `registration:${uid}`, recordHash: registrationRecordHash(uid), subjectWorkflowId: registration.workflowId }];
      const batchFailure = await server.env.client.workflow
        .execute(anchorBatchWorkflow, { taskQueue, workflowId: 'anchor-batch-refused', args: [{ records }] })
        .catch((err: unknown) => err);
      const registrationFailure = await registration.result().catch((err: unknown) => err);
      return { batchFailure, registrationFailure };
    });
    expect(activities.planAnchor).toHaveBeenCalledTimes(3);
    expect((batchFailure as WorkflowFailedError).cause).toMatchObject({ type: 'MissingInputs' });
    // The record learns the batch's reason; the type is the batch's generic one (it is not an activity's failure).
    expect((registrationFailure as WorkflowFailedError).cause).toMatchObject({
      type: 'AnchorFailed',
      message: (batchFailure as WorkflowFailedError).cause!.message,
    });
    expect(activities.markRegistrationFailed).toHaveBeenCalledWith({ uid, reason: (batchFailure as WorkflowFailedError).cause!.message });
  });
});

describe('a batch waiting for pool funds', () => {
  const server = timeSkippingEnvForBlock();

  it('keeps its records past their re-request interval: they wait for it and are anchored once', async () => {
    const limits = { maxRecords: 50, maxWaitSeconds: 5 };
    const batcherId = `${BATCHER_ID}-funds`;
    // Refusals back off 30 s, 60 s … up to 300 s: six of them keep the batch waiting past the record's 10 minutes.
    const { activities, setTaskQueue } = batchedRegistrations(server.env, limits, batcherId, chainShortOfFunds(BATCH, 6));
    const uid = 'batch-patient';
    const startedAt = await server.env.currentTimeMs();
    const result = await registerThroughBatcher(server.env, { activities, setTaskQueue }, uid, batcherId);
    expect((await server.env.currentTimeMs()) - startedAt).toBeGreaterThan(10 * 60_000);
    expect(activities.anchorBatchOpen).toHaveBeenCalled();
    expect(activities.requestBatchAnchor).toHaveBeenCalledTimes(1);
    expect(activities.planAnchor).toHaveBeenCalledTimes(7);
    expect(activities.signTransaction).toHaveBeenCalledTimes(1);
    expect(result.txid).toBe(txidOfPlan(activities.signTransaction.mock.calls[0]![0]));
  });
});

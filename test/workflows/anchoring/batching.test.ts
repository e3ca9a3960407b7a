import { WorkflowNotFoundError, type WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { anchorBatchWorkflowId } from '../../../src/anchoring/ids';
import { verifyMerkleProof } from '../../../src/anchoring/merkle';
import { anchorBatcherWorkflow, anchorBatchWorkflow, registrationWorkflow } from '../../../workflows';
import {
  anchorBatcherStateQuery,
  anchorBatchHoldsQuery,
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
  settledRegistrationRequest,
  txidOfPlan,
} from '../../support/workflowFixtures';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const BATCH: AnchoringPolicy = { mode: 'batch', minConfirmations: 2, pollSeconds: 30 };
const BATCHER_ID = 'anchor-batcher';

/**
 * Polls the batcher's query until `done` holds (time stays still meanwhile: nothing awaits a result); a batcher not
 * started yet (its first request is on its way) counts as not done.
 */
async function batcherState(env: TestWorkflowEnvironment, workflowId: string, done: (s: AnchorBatcherState) => boolean) {
  for (let i = 0; ; i++) {
    const state = await env.client.workflow
      .getHandle(workflowId)
      .query(anchorBatcherStateQuery)
      .catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError && i < 100) return undefined;
        throw err;
      });
    if (state && (done(state) || i === 100)) return state;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether a batch still runs, asked of the test server as the real activity asks Temporal. */
function batchOpenOn(server: { env: TestWorkflowEnvironment }) {
  return async ({ workflowId }: { workflowId: string }) =>
    (await server.env.client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
}

/**
 * Record activities whose prepareRegistration (and requestBatchAnchor) signals-with-start the batcher on the test's
 * task queue, and a settledRecordState that asks the batcher's last batch whether it holds the record.
 */
function batchedRegistrations(
  env: TestWorkflowEnvironment,
  limits: AnchorBatcherInput,
  batcherId: string,
  chain: ReturnType<typeof fakeChainActivities> = fakeChainActivities(BATCH),
) {
  let taskQueue = '';
  const enqueue = async (request: AnchorRequest) => {
    await env.client.workflow.signalWithStart(anchorBatcherWorkflow, {
      workflowId: batcherId,
      taskQueue,
      args: [limits],
      signal: anchorRequestSignal,
      signalArgs: [{ ...request, limits }],
    });
  };
  const activities = mockActivities({
    ...registrationStores(enqueue),
    ...chain,
    anchorBatchOpen: batchOpenOn({ env }),
    requestBatchAnchor: enqueue,
    settledRecordState: async ({ key }) => {
      const { lastBatchWorkflowId } = await env.client.workflow.getHandle(batcherId).query(anchorBatcherStateQuery);
      const batch = lastBatchWorkflowId ? env.client.workflow.getHandle(lastBatchWorkflowId) : undefined;
      const open = batch && (await batch.describe()).status.name === 'RUNNING';
      return open && (await batch.query(anchorBatchHoldsQuery, key)) ? { state: 'held' as const } : { state: 'lost' as const };
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

function startRegistration(env: TestWorkflowEnvironment, taskQueue: string, uid: string) {
  return env.client.workflow.start(registrationWorkflow, { taskQueue, workflowId: `registration-${uid}`, args: [registrationInput(uid)] });
}

/** Starts a registration of each uid at once and returns their results, in the uids' order. */
async function registerAtOnce(env: TestWorkflowEnvironment, taskQueue: string, uids: string[]) {
  const handles = await Promise.all(uids.map((uid) => startRegistration(env, taskQueue, uid)));
  return Promise.all(handles.map((h) => h.result()));
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
    const batched = batchedRegistrations(server.env, limits, batcherId);
    // The batcher starts holding both requests (as one carried over continue-as-new would), so it cuts them together
    // whatever the timing; the registrations' own hand-over goes nowhere.
    const activities = { ...batched.activities, ...mockActivities({ prepareRegistration: registrationStores().prepareRegistration }) };
    const uids = ['batch-a', 'batch-b'];
    const { results, state } = await withWorker(server.env, activities, async (taskQueue) => {
      batched.setTaskQueue(taskQueue);
      const handles = await Promise.all(uids.map((uid) => startRegistration(server.env, taskQueue, uid)));
      await server.env.client.workflow.start(anchorBatcherWorkflow, {
        workflowId: batcherId,
        taskQueue,
        args: [{ ...limits, pending: uids.map((uid) => settledRegistrationRequest(uid)) }],
      });
      const results = await Promise.all(handles.map((h) => h.result()));
      const state = await closeBatcher(server.env, batcherId);
      return { results, state };
    });

    // The pair's transaction: the one planned for both hashes. (The test server's clock can leap ahead, so a
    // record may also ask again after its guard; what counts is that both were settled by one transaction.)
    const txid = results[0]!.txid;
    const pairPlan = activities.signTransaction.mock.calls.find(([plan]) => txidOfPlan(plan) === txid);
    expect(pairPlan).toBeDefined();
    expect(activities.planAnchor).toHaveBeenCalledWith(
      expect.objectContaining({ recordHashes: expect.arrayContaining(uids.map(registrationRecordHash)), round: 1 }),
    );
    results.forEach((result, i) => {
      expect(result).toMatchObject({ uid: uids[i], txid });
      expect(verifyMerkleProof(registrationRecordHash(uids[i]!), result.proof)).toBe(true);
      expect(result.proof.count).toBe(2);
      expect(result.confirmations).toBeGreaterThanOrEqual(BATCH.minConfirmations);
    });
    expect(results[0]!.proof.root).toBe(results[1]!.proof.root);
    expect(results[0]!.proof.index).not.toBe(results[1]!.proof.index);
    expect(state.pending).toBe(0);
    // The batch wrote both records' states in one activity per state.
    const anchoring = activities.markRegistrationsAnchoring.mock.calls.map(([c]) => c).find((c) => c.txid === txid)!;
    expect(anchoring.records.map((r) => r.uid).sort()).toEqual(uids);
    const anchored = activities.markRegistrationsAnchored.mock.calls.map(([c]) => c).find((c) => c.txid === txid)!;
    expect(anchored.records.map((r) => r.uid).sort()).toEqual(uids);
    expect(activities.markRegistrationAnchored).not.toHaveBeenCalled();
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
      // An idle batcher cuts the first request at once; the next ones wait out the interval or the size.
      await batcher.signal(anchorRequestSignal, request('key-0'));
      await batcherState(server.env, batcherId, (s) => s.batchesThisRun === 1);
      await batcher.signal(anchorRequestSignal, request('key-1'));
      await batcher.signal(anchorRequestSignal, request('key-1'));
      const held = await batcherState(server.env, batcherId, (s) => s.pending === 1);
      await batcher.signal(anchorRequestSignal, { ...request('key-2'), limits: { maxRecords: 2, maxWaitSeconds: 3600 } });
      const after = await batcherState(server.env, batcherId, (s) => s.batchesThisRun === 2);
      // The records' workflows are gone: the batch hands out to no one and still anchors.
      const batch = await server.env.client.workflow.getHandle(after.lastBatchWorkflowId!).result();
      return { held, after, batch };
    });
    expect(held).toMatchObject({ pending: 1, batchesThisRun: 1, lastBatchWorkflowId: anchorBatchWorkflowId('key-0', 1) });
    expect(after).toMatchObject({ pending: 0, batchesThisRun: 2, lastBatchWorkflowId: anchorBatchWorkflowId('key-1', 2) });
    expect(activities.planAnchor).toHaveBeenCalledWith(expect.objectContaining({ recordHashes: [hex64('key-1'), hex64('key-2')] }));
    expect(batch).toMatchObject({ count: 2, txid: txidOfPlan(activities.signTransaction.mock.calls[1]![0]) });
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
      anchorBatchOpen: batchOpen,
    });
    const { batchFailure, registrationFailure } = await withWorker(server.env, activities, async (taskQueue) => {
      const registration = await server.env.client.workflow.start(registrationWorkflow, {
        taskQueue,
        workflowId: `registration-${uid}`,
        args: [registrationInput(uid)],
      });
      // The test hands the record to the batch itself (prepareRegistration's hand-over goes nowhere).
      const records = [settledRegistrationRequest(uid, registration.workflowId)];
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

  it('keeps its records past the time they wait before asking: told it holds them, they wait and are anchored once', async () => {
    const limits = { maxRecords: 50, maxWaitSeconds: 5 };
    const batcherId = `${BATCHER_ID}-funds`;
    // Refusals back off 30 s, 60 s … up to 300 s: 23 of them (6,150 s) keep the batch waiting past the record's
    // 100 minutes (an hour plus 20 minutes for each of the two confirmations).
    const { activities, setTaskQueue } = batchedRegistrations(server.env, limits, batcherId, chainShortOfFunds(BATCH, 23));
    const uid = 'batch-patient';
    const startedAt = await server.env.currentTimeMs();
    const result = await registerThroughBatcher(server.env, { activities, setTaskQueue }, uid, batcherId);
    expect((await server.env.currentTimeMs()) - startedAt).toBeGreaterThan(6000_000);
    expect(activities.settledRecordState).toHaveBeenCalledWith({ key: `registration:${uid}`, uid });
    expect(await activities.settledRecordState.mock.results[0]!.value).toEqual({ state: 'held' });
    expect(activities.requestBatchAnchor).not.toHaveBeenCalled();
    expect(activities.prepareRegistration).toHaveBeenCalledTimes(1);
    expect(activities.planAnchor).toHaveBeenCalledTimes(24);
    expect(activities.signTransaction).toHaveBeenCalledTimes(1);
    expect(result.txid).toBe(txidOfPlan(activities.signTransaction.mock.calls[0]![0]));
  });
});

describe('single mode', () => {
  const server = timeSkippingEnvForBlock();

  it('gives each record a transaction of its own: batches of one, cut as they come', async () => {
    const limits = { maxRecords: 1, maxWaitSeconds: 5 };
    const batcherId = `${BATCHER_ID}-single`;
    const { activities, setTaskQueue } = batchedRegistrations(server.env, limits, batcherId);
    const uids = ['single-a', 'single-b'];
    const results = await withWorker(server.env, activities, async (taskQueue) => {
      setTaskQueue(taskQueue);
      const results = await registerAtOnce(server.env, taskQueue, uids);
      await closeBatcher(server.env, batcherId);
      return results;
    });
    expect(activities.planAnchor).toHaveBeenCalledTimes(2);
    expect(activities.signTransaction).toHaveBeenCalledTimes(2);
    const planned = activities.planAnchor.mock.calls.map(([call]) => call.recordHashes);
    expect(planned.map((hashes) => hashes.length)).toEqual([1, 1]);
    expect(planned.flat().sort()).toEqual(uids.map(registrationRecordHash).sort());
    results.forEach((result, i) => expect(verifyMerkleProof(registrationRecordHash(uids[i]!), result.proof)).toBe(true));
    expect(results.every((r) => r.proof.count === 1)).toBe(true);
  });
});

// A server each: a second batcher on one test server stops its clock from skipping (see above).
describe.each([
  { case: 'until the batch in flight has its transaction out', maxWaitSeconds: 900, refusals: 1, gap: [30, 900] },
  { case: 'at most the interval after the last cut', maxWaitSeconds: 60, refusals: 3, gap: [60, 90] },
])('group commit', ({ case: waits, maxWaitSeconds, refusals, gap }) => {
  const server = timeSkippingEnvForBlock();

  it(`cuts a lone record at once when idle; one arriving while a batch goes out waits ${waits}`, async () => {
    const limits = { maxRecords: 50, maxWaitSeconds };
    const batcherId = `${BATCHER_ID}-group-${maxWaitSeconds}`;
    // The first batch waits for pool funds (30 s, then 60 s … between refusals), so it is in flight for a while.
    const chain = chainShortOfFunds(BATCH, refusals);
    const { activities, setTaskQueue } = batchedRegistrations(server.env, limits, batcherId, chain);
    const { first, second, events } = await withWorker(server.env, activities, async (taskQueue) => {
      setTaskQueue(taskQueue);
      const start = (uid: string) =>
        server.env.client.workflow.start(registrationWorkflow, {
          taskQueue,
          workflowId: `registration-${uid}-${maxWaitSeconds}`,
          args: [registrationInput(uid)],
        });
      const firstRun = await start('group-first');
      // The second asks right after the first cut (time stands still while nothing awaits a result).
      await batcherState(server.env, batcherId, (s) => s.batchesThisRun === 1);
      const secondRun = await start('group-second');
      const [first, second] = [await firstRun.result(), await secondRun.result()];
      await closeBatcher(server.env, batcherId);
      return { first, second, events: (await server.env.client.workflow.getHandle(batcherId).fetchHistory()).events! };
    });

    expect([first.proof.count, second.proof.count]).toEqual([1, 1]);
    expect(activities.signTransaction).toHaveBeenCalledTimes(2);
    // Times from the batcher's history: the test server's clock may leap ahead while nothing waits on a timer.
    const at = (e: (typeof events)[number]) => Number(e.eventTime!.seconds) * 1000 + (e.eventTime!.nanos ?? 0) / 1e6;
    const cuts = events.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).map(at);
    const requests = events.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'anchorRequest').map(at);
    expect(cuts).toHaveLength(2);
    expect(requests).toHaveLength(2);
    expect(cuts[0]! - requests[0]!).toBeLessThan(1000);
    expect(requests[1]! - cuts[0]!).toBeLessThan(1000);
    // Within a second: an event's time is its workflow task's end, a bit after the cut's own clock.
    expect(cuts[1]! - cuts[0]!).toBeGreaterThan((gap[0]! - 1) * 1000);
    expect(cuts[1]! - cuts[0]!).toBeLessThan(gap[1]! * 1000);
  });
});

import { chainFollowerWorkflow } from '../../../workflows';
import { chainFollowerStateQuery, type HeaderSyncResult } from '../../../workflows/chainFollower/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { mockActivities, withWorker } from '../../support/workflowWorker';

/** A chain service as the sync activity reports it: a queue of answers, then "caught up" at the last height. */
function scriptedSync(answers: HeaderSyncResult[]) {
  let last: HeaderSyncResult = { status: 'extended', tipHeight: 0, added: 0, behind: 0 };
  return async (): Promise<HeaderSyncResult> => {
    const next = answers.shift();
    if (next) last = next;
    return next ?? { status: 'extended', tipHeight: last.tipHeight, added: 0, behind: 0 };
  };
}

describe('chainFollowerWorkflow', () => {
  const server = timeSkippingEnvForBlock();

  it('rolls back to the common block on a fork before proving, then follows the new branch', async () => {
    const activities = mockActivities({
      syncChainHeaders: scriptedSync([
        { status: 'extended', tipHeight: 10, added: 10, behind: 0 },
        { status: 'reorg', tipHeight: 10, added: 0, behind: 0, forkHeight: 8 },
        { status: 'extended', tipHeight: 11, added: 3, behind: 0 },
      ]),
      rollBackChain: async () => ({ removedHeaders: 2, unproven: ['a'.repeat(64)] }),
      proveAnchorTxs: async () => ({ examined: 1, proven: 1, more: false }),
    });
    const state = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(chainFollowerWorkflow, {
        taskQueue,
        workflowId: 'chain-follower-test',
        args: [{ network: 'test', pollSeconds: 30, batchSize: 50 }],
      });
      await server.env.sleep('2 minutes');
      return handle.query(chainFollowerStateQuery);
    });
    expect(activities.rollBackChain).toHaveBeenCalledTimes(1);
    expect(activities.rollBackChain).toHaveBeenCalledWith({ network: 'test', forkHeight: 8 });
    // Proving follows each settled sync, never the sync that found the fork.
    const order = [
      ...activities.syncChainHeaders.mock.invocationCallOrder.map((at) => ({ at, name: 'sync' })),
      ...activities.rollBackChain.mock.invocationCallOrder.map((at) => ({ at, name: 'rollBack' })),
      ...activities.proveAnchorTxs.mock.invocationCallOrder.map((at) => ({ at, name: 'prove' })),
    ]
      .sort((a, b) => a.at - b.at)
      .map((c) => c.name);
    expect(order.slice(0, 6)).toEqual(['sync', 'prove', 'sync', 'rollBack', 'sync', 'prove']);
    expect(state).toMatchObject({ network: 'test', tipHeight: 11, reorgsSeen: 1 });
  });

  it('syncs without sleeping while behind, and sleeps a poll once caught up', async () => {
    const activities = mockActivities({
      syncChainHeaders: scriptedSync([
        { status: 'extended', tipHeight: 100, added: 100, behind: 150 },
        { status: 'extended', tipHeight: 200, added: 100, behind: 50 },
        { status: 'extended', tipHeight: 250, added: 50, behind: 0 },
      ]),
      rollBackChain: async () => ({ removedHeaders: 0, unproven: [] }),
      proveAnchorTxs: async () => ({ examined: 0, proven: 0, more: false }),
    });
    await withWorker(server.env, activities, async (taskQueue) => {
      await server.env.client.workflow.start(chainFollowerWorkflow, {
        taskQueue,
        workflowId: 'chain-follower-behind',
        args: [{ network: 'test', pollSeconds: 60, batchSize: 100 }],
      });
      // Less than one poll: the three catching-up rounds ran back to back, then one sleep began.
      await server.env.sleep('30 seconds');
    });
    expect(activities.syncChainHeaders).toHaveBeenCalledTimes(3);
    expect(activities.syncChainHeaders).toHaveBeenCalledWith({ network: 'test', maxHeaders: 100 });
  });

  it('continues as new after a bounded number of rounds, carrying its reorg count', async () => {
    const activities = mockActivities({
      syncChainHeaders: scriptedSync([{ status: 'reorg', tipHeight: 5, added: 0, behind: 0, forkHeight: 4 }]),
      rollBackChain: async () => ({ removedHeaders: 1, unproven: [] }),
      proveAnchorTxs: async () => ({ examined: 0, proven: 0, more: false }),
    });
    const { firstRunId, described, state } = await withWorker(server.env, activities, async (taskQueue) => {
      const handle = await server.env.client.workflow.start(chainFollowerWorkflow, {
        taskQueue,
        workflowId: 'chain-follower-continues',
        args: [{ network: 'test', pollSeconds: 1, batchSize: 10 }],
      });
      await server.env.sleep('150 seconds');
      return {
        firstRunId: handle.firstExecutionRunId,
        described: await server.env.client.workflow.getHandle('chain-follower-continues').describe(),
        state: await server.env.client.workflow.getHandle('chain-follower-continues').query(chainFollowerStateQuery),
      };
    });
    expect(described.runId).not.toBe(firstRunId);
    expect(described.status.name).toBe('RUNNING');
    expect(state.reorgsSeen).toBe(1);
  });
});

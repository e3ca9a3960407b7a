import { continueAsNew, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { createChainFollowerActivities } from '../../activities/chainFollower/followerActivities';
import { chainFollowerStateQuery, type ChainFollowerInput } from './shared';

type FollowerActivities = ReturnType<typeof createChainFollowerActivities>;

// Each call does a bounded batch and heartbeats per chain request; the chain service may be down for hours, so
// retries back off to a minute and never give up: the follower is meant to outlive any outage.
const { syncChainHeaders, rollBackChain, proveAnchorTxs } = proxyActivities<FollowerActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Rounds per run before continue-as-new: each round is at most four activities (~25 events), so a run stays small. */
const ROUNDS_PER_RUN = 100;

/**
 * Keeps the network's block headers in MongoDB and proves anchor txs against them (id `chain-follower-<network>`,
 * started once at worker boot). A round: sync headers; on a fork, roll back to the common block first; then prove
 * waiting anchor txs; sleep only when caught up. Long-running rather than a schedule so a new block is seen within
 * one poll, under one id, without a workflow execution per poll.
 */
export async function chainFollowerWorkflow(input: ChainFollowerInput): Promise<void> {
  let tipHeight: number | null = null;
  let reorgsSeen = input.reorgsSeen ?? 0;
  let rounds = 0;
  setHandler(chainFollowerStateQuery, () => ({ network: input.network, tipHeight, roundsThisRun: rounds, reorgsSeen }));

  for (; rounds < ROUNDS_PER_RUN && !workflowInfo().continueAsNewSuggested; rounds++) {
    const sync = await syncChainHeaders({ network: input.network, maxHeaders: input.batchSize });
    tipHeight = sync.tipHeight;
    if (sync.status === 'reorg') {
      await rollBackChain({ network: input.network, forkHeight: sync.forkHeight! });
      reorgsSeen++;
      continue;
    }
    const proving = await proveAnchorTxs({ network: input.network, limit: input.batchSize });
    if (sync.behind > 0 || proving.more) continue;
    await sleep(`${input.pollSeconds} seconds`);
  }
  await continueAsNew<typeof chainFollowerWorkflow>({ ...input, reorgsSeen });
}

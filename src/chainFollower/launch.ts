import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { AppConfig } from '../config';
import { startOnce, type LaunchResult } from '../temporal/launch';
import { WORKFLOW_KIND } from '../../workflows/shared/searchAttributes';
import { TASK_QUEUES } from '../../workflows/shared/taskQueues';
import type { ChainFollowerInput } from '../../workflows/chainFollower/shared';
import { chainFollowerWorkflowId } from './ids';

/**
 * Starts the network's chain follower unless it runs already: the worker calls this at every boot. A running
 * follower keeps its settings until its next continue-as-new picks up none (they travel in its input), so a
 * changed poll interval applies after the follower is terminated and the worker restarted (docs/OPERATIONS.md).
 */
export function startChainFollower(client: Client, config: Pick<AppConfig, 'chainFollower' | 'woc'>): Promise<LaunchResult> {
  const network = config.woc.network;
  const input: ChainFollowerInput = { network, pollSeconds: config.chainFollower.pollSeconds, batchSize: config.chainFollower.batchSize };
  return startOnce(client, 'chainFollowerWorkflow', {
    workflowId: chainFollowerWorkflowId(network),
    taskQueue: TASK_QUEUES.main,
    args: [input],
    // A follower that was terminated or failed is started afresh at the next boot; a running one is left alone.
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: [{ key: WORKFLOW_KIND, value: 'chain-follower' }],
  });
}

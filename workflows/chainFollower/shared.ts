import { defineQuery } from '@temporalio/workflow';

export interface ChainFollowerInput {
  network: 'main' | 'test';
  /** Pause between rounds once caught up with the chain and with every anchor tx it can prove. */
  pollSeconds: number;
  /** Headers per sync call and anchor txs per proving call: each activity's work stays bounded. */
  batchSize: number;
  /** Carried over continue-as-new, for the state query and the runbook. */
  reorgsSeen?: number;
}

export interface HeaderSyncResult {
  /** `reorg`: the chain service's header at `forkHeight + 1` does not build on ours; nothing was written. */
  status: 'extended' | 'reorg';
  tipHeight: number;
  added: number;
  /** Headers the chain service has beyond our tip after this call. */
  behind: number;
  forkHeight?: number;
}

export interface RollBackResult {
  removedHeaders: number;
  /** Anchor txs whose block left the chain; they are proven again once mined anew. */
  unproven: string[];
}

export interface ProveResult {
  examined: number;
  proven: number;
  /** More unproven txs than one call takes were waiting. */
  more: boolean;
}

export interface ChainFollowerState {
  network: 'main' | 'test';
  tipHeight: number | null;
  roundsThisRun: number;
  reorgsSeen: number;
}

export const chainFollowerStateQuery = defineQuery<ChainFollowerState>('chainFollowerState');

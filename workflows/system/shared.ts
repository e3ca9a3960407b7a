import { defineQuery } from '@temporalio/workflow';

/** Messages and types of the system-check workflow, shared by the workflow, its activities and its callers. */

export type SystemCheckTrigger = 'api' | 'cli' | 'schedule' | 'test';
export type ProbedDependency = 'mongo' | 'redis';

export interface SystemCheckInput {
  /** Omitted by the schedule, whose runs are keyed by their own workflow ids. */
  checkId?: string;
  requestedBy: SystemCheckTrigger;
}

export interface ProbeResult {
  dependency: ProbedDependency;
  ok: boolean;
  latencyMs?: number;
  /** Present when the probe failed after its retries; already free of secrets. */
  error?: string;
}

export interface SystemCheckReport {
  checkId: string;
  requestedBy: SystemCheckTrigger;
  status: 'ok' | 'degraded';
  probes: ProbeResult[];
  startedAt: string;
  completedAt: string;
}

export interface SystemCheckProgress {
  step: 'probing' | 'recording' | 'done';
  probes: ProbeResult[];
}

export const systemCheckProgressQuery = defineQuery<SystemCheckProgress>('systemCheckProgress');

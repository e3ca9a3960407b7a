import { ActivityFailure, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SystemActivities } from '../../activities/system/probes';
import { checkIdFromWorkflowId } from '../../src/system/ids';
import { WORKFLOW_KIND, WORKFLOW_STATUS } from '../shared/searchAttributes';
import {
  systemCheckProgressQuery,
  type ProbedDependency,
  type ProbeResult,
  type SystemCheckInput,
  type SystemCheckProgress,
  type SystemCheckReport,
} from './shared';

// A probe that cannot answer in a few seconds counts as down: three quick attempts, then report it rather than
// keep the operator waiting.
const probes = proxyActivities<SystemActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumAttempts: 3 },
});

// Recording the report is our own write; retry it longer, since losing it would hide the result from the API.
const recorder = proxyActivities<SystemActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 10 },
});

/**
 * Proves the wiring end to end: API or CLI → Temporal → worker → Mongo and Redis → report.
 * Runbook: "health" — a degraded report names the dependency that failed.
 */
export async function systemCheckWorkflow(input: SystemCheckInput): Promise<SystemCheckReport> {
  const checkId = input.checkId ?? checkIdFromWorkflowId(workflowInfo().workflowId);
  const startedAt = new Date(Date.now()).toISOString();
  const progress: SystemCheckProgress = { step: 'probing', probes: [] };
  setHandler(systemCheckProgressQuery, () => progress);
  upsertSearchAttributes([
    { key: WORKFLOW_KIND, value: 'system-check' },
    { key: WORKFLOW_STATUS, value: 'running' },
  ]);

  const runProbe = async (dependency: ProbedDependency, probe: () => Promise<ProbeResult>): Promise<ProbeResult> => {
    try {
      const result = await probe();
      progress.probes.push(result);
      return result;
    } catch (err) {
      // Only an exhausted activity is an answer ("down"); anything else is a bug and fails the workflow.
      if (!(err instanceof ActivityFailure)) throw err;
      const failed: ProbeResult = { dependency, ok: false, error: err.cause?.message ?? err.message };
      progress.probes.push(failed);
      return failed;
    }
  };

  const results = await Promise.all([
    runProbe('mongo', () => probes.probeMongo(checkId)),
    runProbe('redis', () => probes.probeRedis(checkId)),
  ]);

  const report: SystemCheckReport = {
    checkId,
    requestedBy: input.requestedBy,
    status: results.every((r) => r.ok) ? 'ok' : 'degraded',
    probes: results,
    startedAt,
    completedAt: new Date(Date.now()).toISOString(),
  };

  progress.step = 'recording';
  const mongoUp = results.find((r) => r.dependency === 'mongo')?.ok === true;
  // With Mongo down the report cannot be stored; the workflow result and history still carry it.
  if (mongoUp) await recorder.recordSystemCheck(report);

  progress.step = 'done';
  upsertSearchAttributes([{ key: WORKFLOW_STATUS, value: report.status }]);
  return report;
}

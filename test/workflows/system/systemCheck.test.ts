import { ApplicationFailure } from '@temporalio/common';
import type { SystemCheckReport } from '../../../workflows/system/shared';
import { systemCheckWorkflow } from '../../../workflows';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { mockActivities, withWorker } from '../../support/workflowWorker';

describe('systemCheckWorkflow', () => {
  const server = timeSkippingEnvForBlock();

  it('reports ok and records the report when both probes answer', async () => {
    const activities = mockActivities({
      probeMongo: async () => ({ dependency: 'mongo', ok: true, latencyMs: 3 }),
      probeRedis: async () => ({ dependency: 'redis', ok: true, latencyMs: 1 }),
      recordSystemCheck: async () => undefined,
    });
    const report: SystemCheckReport = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(systemCheckWorkflow, {
        taskQueue,
        workflowId: 'check-ok',
        args: [{ checkId: 'check-ok', requestedBy: 'test' }],
      }),
    );
    expect(report.status).toBe('ok');
    expect(activities.recordSystemCheck).toHaveBeenCalledWith(report);
  });

  it('reports degraded without recording when mongo stays down', async () => {
    const activities = mockActivities({
      probeMongo: async () => {
        throw ApplicationFailure.retryable('connection refused');
      },
      probeRedis: async () => ({ dependency: 'redis', ok: true, latencyMs: 1 }),
      recordSystemCheck: async () => undefined,
    });
    const report: SystemCheckReport = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(systemCheckWorkflow, {
        taskQueue,
        workflowId: 'check-down',
        args: [{ checkId: 'check-down', requestedBy: 'test' }],
      }),
    );
    expect(report.status).toBe('degraded');
    expect(activities.probeMongo).toHaveBeenCalledTimes(3);
    expect(activities.recordSystemCheck).not.toHaveBeenCalled();
  });
});

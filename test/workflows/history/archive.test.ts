import { historyArchiveWorkflow } from '../../../workflows';
import type { ArchiveBatchResult } from '../../../workflows/history/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { mockActivities, withWorker } from '../../support/workflowWorker';

describe('history archive', () => {
  const server = timeSkippingEnvForBlock();

  const run = (activities: ReturnType<typeof mockActivities<'archiveClosedHistories'>>, workflowId: string) =>
    withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(historyArchiveWorkflow, {
        taskQueue,
        workflowId,
        args: [{ requestedBy: 'test', batch: 2, settleSeconds: 60 }],
      }),
    );

  it('archives batch after batch until the window is done, and reports the totals and the final watermark', async () => {
    const answers: ArchiveBatchResult[] = [
      { archived: 2, alreadyArchived: 0, closedBefore: '2026-12-08T01:00:00.000Z', more: true },
      { archived: 2, alreadyArchived: 1, closedBefore: '2026-12-08T02:00:00.000Z', more: true },
      { archived: 1, alreadyArchived: 0, closedBefore: '2026-12-08T03:00:00.000Z', more: false },
    ];
    const activities = mockActivities({ archiveClosedHistories: async () => answers.shift()! });
    const report = await run(activities, 'history-archive-batches');
    expect(report).toEqual({ archived: 5, alreadyArchived: 1, batches: 3, closedBefore: '2026-12-08T03:00:00.000Z', more: false });
    expect(activities.archiveClosedHistories).toHaveBeenCalledWith({ batch: 2, settleSeconds: 60 });
  });

  it('stops at its batch limit with work left, so one run’s own history stays small and the next run resumes', async () => {
    const activities = mockActivities({
      archiveClosedHistories: async () => ({ archived: 2, alreadyArchived: 0, closedBefore: '2026-12-08T01:00:00.000Z', more: true }),
    });
    const report = await run(activities, 'history-archive-limit');
    expect(report).toMatchObject({ batches: 50, archived: 100, more: true });
    expect(activities.archiveClosedHistories).toHaveBeenCalledTimes(50);
  });
});

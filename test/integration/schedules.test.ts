import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { SYSTEM_CHECK_SCHEDULE_ID } from '../../src/system/ids';
import { desiredSchedules, MANAGED_SCHEDULE_IDS, reconcileSchedules } from '../../workers/schedules';
import { connectTestDeps, testEnvironment, type TestDeps } from '../support/stack';

describe('schedule reconciliation at worker start', () => {
  let deps: TestDeps;

  beforeAll(async () => {
    deps = await connectTestDeps('worker');
    // Files of one Jest worker share a namespace: start without any managed schedule another file left behind.
    for (const scheduleId of MANAGED_SCHEDULE_IDS) {
      await deps.temporal.schedule
        .getHandle(scheduleId)
        .delete()
        .catch(() => undefined);
    }
  });
  afterAll(() => deps.close());

  const configWith = (every: string) => loadConfig(testEnvironment({ SYSTEM_CHECK_EVERY: every }));

  it('creates the schedule with an explicit overlap policy and catch-up window', async () => {
    const result = await reconcileSchedules(deps.temporal, desiredSchedules(configWith('15m')));
    expect(result).toEqual({ created: [SYSTEM_CHECK_SCHEDULE_ID], updated: [], deleted: [] });
    const description = await deps.temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID).describe();
    expect(description.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
    expect(description.policies.catchupWindow).toBe(10 * 60 * 1000);
    expect(description.spec.intervals?.[0]?.every).toBe(15 * 60 * 1000);
    expect(description.action.workflowType).toBe('systemCheckWorkflow');
  });

  it('updates the existing schedule on the next start instead of failing (ScheduleAlreadyRunning)', async () => {
    const result = await reconcileSchedules(deps.temporal, desiredSchedules(configWith('5m')));
    expect(result).toEqual({ created: [], updated: [SYSTEM_CHECK_SCHEDULE_ID], deleted: [] });
    const description = await deps.temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID).describe();
    expect(description.spec.intervals?.[0]?.every).toBe(5 * 60 * 1000);
  });

  it('runs the scheduled workflow when triggered', async () => {
    const handle = deps.temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID);
    await handle.trigger();
    let recent: { workflowId: string }[] = [];
    for (let i = 0; i < 50 && recent.length === 0; i++) {
      recent = (await handle.describe()).info.recentActions.map((a) => ({ workflowId: a.action.workflow.workflowId }));
      if (recent.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(recent[0]?.workflowId).toMatch(/^system-check-scheduled-/);
  });

  it('deletes the schedule when the configuration switches it off', async () => {
    const result = await reconcileSchedules(deps.temporal, desiredSchedules(configWith('off')));
    expect(result).toEqual({ created: [], updated: [], deleted: [SYSTEM_CHECK_SCHEDULE_ID] });
    await expect(deps.temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });
});

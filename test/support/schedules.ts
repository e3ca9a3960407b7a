import type { Client } from '@temporalio/client';

/**
 * Triggers a schedule now, as `temporal schedule trigger` does, and returns the id of the workflow that this trigger
 * started (a new entry in the schedule's recent actions), or undefined if none appeared within about 10 s.
 */
export async function triggerSchedule(client: Client, scheduleId: string): Promise<string | undefined> {
  const handle = client.schedule.getHandle(scheduleId);
  const before = (await handle.describe()).info.recentActions.length;
  await handle.trigger();
  for (let i = 0; i < 100; i++) {
    const actions = (await handle.describe()).info.recentActions;
    if (actions.length > before) return actions.at(-1)!.action.workflow.workflowId;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

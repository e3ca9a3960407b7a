/** Workflow-ID builders of the system domain; no other code concatenates these IDs. */

const CHECK_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidCheckId(checkId: string): boolean {
  return CHECK_ID.test(checkId);
}

export function systemCheckWorkflowId(checkId: string): string {
  if (!isValidCheckId(checkId)) throw new RangeError('checkId must be 1–64 characters of A–Z, a–z, 0–9, _ or -');
  return `system-check-${checkId}`;
}

/**
 * The check id of a run that was not given one: schedule-started runs get workflow ids such as
 * `system-check-scheduled-2026-11-27T02:00:00Z`, whose `:` a check id may not contain.
 */
export function checkIdFromWorkflowId(workflowId: string): string {
  return workflowId
    .replace(/^system-check-/, '')
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 64);
}

export const SYSTEM_CHECK_SCHEDULE_ID = 'system-check-schedule';

/** Workflow, schedule and backup ids of the backup domain; no other code concatenates these. */

const BACKUP_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidBackupId(backupId: string): boolean {
  return BACKUP_ID.test(backupId);
}

function checked(id: string, what: string): string {
  if (!isValidBackupId(id)) throw new RangeError(`${what} must be 1–64 characters of A–Z, a–z, 0–9, _ or -`);
  return id;
}

/** The id of a backup taken at `date`: `20261128T013000Z` (UTC, to the second). Sorts like the dates. */
export function backupIdAt(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** The time a default backup id names, or null for a named backup (`--backup-id before-upgrade`). */
export function backupIdTime(backupId: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(backupId);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return backupIdAt(date) === backupId ? date : null;
}

/** One run per backup id: a second start for the same id attaches to it (and its activities skip finished work). */
export function backupWorkflowId(backupId: string): string {
  return `backup-${checked(backupId, 'backup id')}`;
}

export function restoreCheckWorkflowId(checkId: string): string {
  return `restore-check-${checked(checkId, 'check id')}`;
}

export const BACKUP_SCHEDULE_IDS = {
  nightly: 'backup-nightly-schedule',
  restoreCheck: 'backup-restore-check-schedule',
} as const;

/** Workflow-id prefixes of the runs the schedules start (the schedule appends the tick time). */
export const SCHEDULED_BACKUP_WORKFLOW_ID = 'backup-scheduled';
export const SCHEDULED_RESTORE_CHECK_WORKFLOW_ID = 'restore-check-scheduled';

/**
 * The scratch database a restore check restores into: the source's name, a marker and a random suffix, so it can
 * never be the source and two checks never share one. Kept within the 63 characters MongoDB and FerretDB accept.
 */
export function scratchDatabaseName(sourceDatabase: string, suffix: string): string {
  const tail = `_restore_check_${suffix.replace(/[^A-Za-z0-9]/g, '').slice(0, 12)}`;
  return `${sourceDatabase.slice(0, 63 - tail.length)}${tail}`;
}

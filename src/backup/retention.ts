/**
 * Grandfather-father-son retention, as the runbook asks (7 daily, 4 weekly, 12 monthly by default): keep the newest
 * backup of each of the last `daily` days that have a backup, of each of the last `weekly` ISO weeks and of each of
 * the last `monthly` months; remove the rest. Pure: dates in, decision out, all in UTC.
 */

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
}

export interface DatedBackup {
  backupId: string;
  createdAt: Date;
}

export interface RetentionDecision<T extends DatedBackup> {
  keep: T[];
  remove: T[];
}

export const dayKey = (d: Date): string => d.toISOString().slice(0, 10);
export const monthKey = (d: Date): string => d.toISOString().slice(0, 7);
/** The UTC date of the Monday that starts `d`'s ISO week. */
export function weekKey(d: Date): string {
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const sinceMonday = (d.getUTCDay() + 6) % 7;
  return new Date(midnight - sinceMonday * 86_400_000).toISOString().slice(0, 10);
}

/** Newest first; ties broken by id so the decision does not depend on input order. */
function newestFirst<T extends DatedBackup>(a: T, b: T): number {
  return b.createdAt.getTime() - a.createdAt.getTime() || (a.backupId < b.backupId ? 1 : a.backupId > b.backupId ? -1 : 0);
}

function newestPerBucket<T extends DatedBackup>(sorted: T[], key: (d: Date) => string, buckets: number): Set<T> {
  const chosen = new Set<T>();
  const seen = new Set<string>();
  for (const backup of sorted) {
    if (seen.size >= buckets) break;
    const k = key(backup.createdAt);
    if (seen.has(k)) continue;
    seen.add(k);
    chosen.add(backup);
  }
  return chosen;
}

export function applyRetention<T extends DatedBackup>(backups: readonly T[], policy: RetentionPolicy): RetentionDecision<T> {
  const sorted = [...backups].sort(newestFirst);
  const keep = new Set<T>([
    ...newestPerBucket(sorted, dayKey, policy.daily),
    ...newestPerBucket(sorted, weekKey, policy.weekly),
    ...newestPerBucket(sorted, monthKey, policy.monthly),
  ]);
  return { keep: sorted.filter((b) => keep.has(b)), remove: sorted.filter((b) => !keep.has(b)) };
}

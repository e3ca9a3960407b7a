import fc from 'fast-check';
import { backupIdAt, backupIdTime, scratchDatabaseName } from '../../../src/backup/ids';
import { applyRetention, dayKey, monthKey, weekKey, type DatedBackup, type RetentionPolicy } from '../../../src/backup/retention';

const MIN = Date.UTC(2020, 0, 1);
const MAX = Date.UTC(2030, 0, 1);

/** Random backup sets: bursts on one day, gaps of months, duplicates of a timestamp. */
const backupsArb = fc
  .array(fc.integer({ min: MIN, max: MAX }), { minLength: 0, maxLength: 150 })
  .chain((times) =>
    fc.constant(times.map((t, i): DatedBackup => ({ backupId: `b${String(i).padStart(4, '0')}`, createdAt: new Date(t) }))),
  );
const denseBackupsArb = fc
  .tuple(fc.integer({ min: MIN, max: MAX - 400 * 86_400_000 }), fc.array(fc.integer({ min: 0, max: 400 * 86_400_000 }), { maxLength: 200 }))
  .map(([base, offsets]) =>
    offsets.map((o, i): DatedBackup => ({ backupId: `d${String(i).padStart(4, '0')}`, createdAt: new Date(base + o) })),
  );
const policyArb = fc.record({
  daily: fc.integer({ min: 1, max: 10 }),
  weekly: fc.integer({ min: 0, max: 6 }),
  monthly: fc.integer({ min: 0, max: 14 }),
});
const anyBackups = fc.oneof(backupsArb, denseBackupsArb);

/** The newest backup of each of the `count` most recent buckets, computed the slow way. */
function newestOfRecentBuckets(backups: DatedBackup[], key: (d: Date) => string, count: number): Set<string> {
  const byBucket = new Map<string, DatedBackup>();
  for (const b of backups) {
    const k = key(b.createdAt);
    const current = byBucket.get(k);
    const newer =
      !current ||
      b.createdAt.getTime() > current.createdAt.getTime() ||
      (b.createdAt.getTime() === current.createdAt.getTime() && b.backupId > current.backupId);
    if (newer) byBucket.set(k, b);
  }
  const recent = [...byBucket.entries()].sort(([, a], [, b]) => b.createdAt.getTime() - a.createdAt.getTime()).slice(0, count);
  return new Set(recent.map(([, b]) => b.backupId));
}

describe('backup retention (grandfather-father-son)', () => {
  it('splits every backup set into keep and remove, with nothing lost or doubled', () => {
    fc.assert(
      fc.property(anyBackups, policyArb, (backups, policy) => {
        const { keep, remove } = applyRetention(backups, policy);
        expect(keep.length + remove.length).toBe(backups.length);
        const ids = new Set([...keep, ...remove].map((b) => b.backupId));
        expect(ids.size).toBe(backups.length);
      }),
    );
  });

  it('keeps exactly the newest backup of each recent day, week and month the policy names', () => {
    fc.assert(
      fc.property(anyBackups, policyArb, (backups, policy: RetentionPolicy) => {
        const expected = new Set([
          ...newestOfRecentBuckets(backups, dayKey, policy.daily),
          ...newestOfRecentBuckets(backups, weekKey, policy.weekly),
          ...newestOfRecentBuckets(backups, monthKey, policy.monthly),
        ]);
        const kept = new Set(applyRetention(backups, policy).keep.map((b) => b.backupId));
        expect(kept).toEqual(expected);
      }),
    );
  });

  it('always keeps the newest backup, and never more than daily + weekly + monthly', () => {
    fc.assert(
      fc.property(anyBackups, policyArb, (backups, policy) => {
        const { keep } = applyRetention(backups, policy);
        expect(keep.length).toBeLessThanOrEqual(policy.daily + policy.weekly + policy.monthly);
        if (backups.length > 0) {
          const newest = Math.max(...backups.map((b) => b.createdAt.getTime()));
          expect(keep[0]!.createdAt.getTime()).toBe(newest);
        }
      }),
    );
  });

  it('never keeps two backups of the same day', () => {
    fc.assert(
      fc.property(anyBackups, policyArb, (backups, policy) => {
        const days = applyRetention(backups, policy).keep.map((b) => dayKey(b.createdAt));
        expect(new Set(days).size).toBe(days.length);
      }),
    );
  });

  it('is stable: applying it to what it kept removes nothing more', () => {
    fc.assert(
      fc.property(anyBackups, policyArb, (backups, policy) => {
        const { keep } = applyRetention(backups, policy);
        expect(applyRetention(keep, policy).remove).toEqual([]);
      }),
    );
  });

  it('does not depend on the order the backups are listed in', () => {
    fc.assert(
      fc.property(anyBackups, policyArb, fc.integer(), (backups, policy, seed) => {
        const shuffled = [...backups].sort((a, b) => ((a.backupId.charCodeAt(1) * seed) % 7) - ((b.backupId.charCodeAt(1) * seed) % 7));
        expect(applyRetention(shuffled, policy).keep.map((b) => b.backupId)).toEqual(
          applyRetention(backups, policy).keep.map((b) => b.backupId),
        );
      }),
    );
  });

  it('keeps a year of nightly backups as 7 days, 4 weeks and 12 months', () => {
    const nightly = Array.from({ length: 400 }, (_, i) => ({
      backupId: backupIdAt(new Date(Date.UTC(2026, 10, 28, 1, 30) - i * 86_400_000)),
      createdAt: new Date(Date.UTC(2026, 10, 28, 1, 30) - i * 86_400_000),
    }));
    const { keep } = applyRetention(nightly, { daily: 7, weekly: 4, monthly: 12 });
    const kept = keep.map((b) => b.backupId);
    // The last 7 nights, and the newest of each of the last 4 weeks and 12 months (some coincide).
    expect(kept.slice(0, 7)).toEqual(nightly.slice(0, 7).map((b) => b.backupId));
    expect(new Set(keep.map((b) => monthKey(b.createdAt))).size).toBe(12);
    expect(keep.at(-1)!.createdAt.toISOString().slice(0, 7)).toBe('2025-12');
  });

  it('names weeks by their Monday, across year ends', () => {
    expect(weekKey(new Date('2026-01-01T12:00:00Z'))).toBe('2025-12-29');
    expect(weekKey(new Date('2026-11-29T23:59:59Z'))).toBe('2026-11-23');
    expect(weekKey(new Date('2026-11-30T00:00:00Z'))).toBe('2026-11-30');
  });
});

describe('backup ids', () => {
  it('names a backup by its UTC time to the second', () => {
    expect(backupIdAt(new Date('2026-11-28T01:30:00.123Z'))).toBe('20261128T013000Z');
  });

  it('reads the time back from a default backup id, and none from a named one', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date(MIN), max: new Date(MAX), noInvalidDate: true }), (date) => {
        const id = backupIdAt(date);
        expect(backupIdTime(id)?.getTime()).toBe(Math.floor(date.getTime() / 1000) * 1000);
      }),
    );
    expect(backupIdTime('before-upgrade')).toBeNull();
    expect(backupIdTime('20261399T000000Z')).toBeNull();
  });

  it('never names the source database as the scratch database, and stays within 63 characters', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9_]{1,63}$/), fc.uuid(), (source, suffix) => {
        const scratch = scratchDatabaseName(source, suffix);
        expect(scratch).not.toBe(source);
        expect(scratch.length).toBeLessThanOrEqual(63);
        expect(scratch).toContain('_restore_check_');
      }),
    );
  });
});

import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { mongo } from 'mongoose';
import { BACKUP_SCHEDULE_IDS, backupIdAt } from '../../../src/backup/ids';
import { collectionFile, listIndexDocuments, listManifests } from '../../../src/backup/dump';
import { startRestoreCheck } from '../../../src/backup/launch';
import { applyRetention } from '../../../src/backup/retention';
import { createDirectoryStorage } from '../../../src/backup/storage';
import { loadConfig } from '../../../src/config';
import { ensureIndexes } from '../../../src/db/indexes';
import { registerModels } from '../../../src/db/models';
import { desiredSchedules, reconcileSchedules } from '../../../workers/schedules';
import type { BackupReport, RestoreCheckReport } from '../../../workflows/backup/shared';
import { recordHistoryIfAsked } from '../../support/histories';
import { connectTestDeps, createTestWorker, testEnvironment, type TestDeps } from '../../support/stack';
import { testEnv } from '../../support/testEnv';
import { triggerSchedule } from '../../support/schedules';

// Decimal128 is left out: FerretDB (the dev stand-in) does not store it.
const { Binary, Double, Long, ObjectId } = mongo.BSON;

describe('backups and restore checks on schedules', () => {
  let deps: TestDeps;
  let worker: Worker;
  let running: Promise<void>;
  let closeConnection: () => Promise<void>;
  let backupDir: string;
  const scheduleIds = Object.values(BACKUP_SCHEDULE_IDS);

  const deleteSchedules = async () => {
    for (const id of scheduleIds) {
      await deps.temporal.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
  };

  beforeAll(async () => {
    backupDir = mkdtempSync(path.join(testEnv('scratchDir'), 'backups-'));
    deps = await connectTestDeps('worker', { BACKUP_DIR: backupDir });
    // Every model's collection and indexes, as the worker creates them at start, plus data of many BSON types.
    registerModels(deps.mongo);
    await ensureIndexes(deps.mongo);
    const db = deps.mongo.db!;
    await db.collection('utxos').insertMany(
      Array.from({ length: 1200 }, (_, i) => ({
        _id: `${'a'.repeat(63)}${i % 10}:${i}` as unknown as mongo.ObjectId,
        txid: 'a'.repeat(64),
        vout: i,
        satoshis: 1000 + i,
        lockingScriptHex: '76a9',
        keyIdentifier: 'funding',
        status: i % 3 === 0 ? 'spent' : 'available',
        blockHeight: i % 7 === 0 ? null : 800_000 + i,
        unseenSyncs: 0,
      })),
    );
    await db.collection('bson_types').insertMany([
      {
        _id: new ObjectId(),
        at: new Date('2026-11-27T01:02:03.456Z'),
        amount: new Double(12345.5),
        big: Long.fromString('9007199254740993'),
        raw: new Binary(Buffer.from([0, 1, 2, 255])),
        nested: { list: [1, 'two', { three: 3 }], nothing: null },
      },
      { _id: new ObjectId(), text: 'ünïcödé ✓', empty: {} },
    ]);
    await db.collection('bson_types').createIndex({ at: -1, 'nested.nothing': 1 }, { name: 'at_nested' });

    await deleteSchedules();
    const config = loadConfig(
      testEnvironment({ BACKUP_DIR: backupDir, BACKUP_CRON: '30 1 * * *', BACKUP_RESTORE_CHECK_CRON: '0 4 1 1,4,7,10 *' }),
    );
    const reconciled = await reconcileSchedules(deps.temporal, desiredSchedules(config));
    expect(reconciled.created).toEqual(expect.arrayContaining(scheduleIds));

    const started = await createTestWorker(deps);
    worker = started.worker;
    closeConnection = () => started.connection.close();
    running = worker.run();
  });

  afterAll(async () => {
    // The namespace is shared with later files of this Jest worker; leave no schedule firing into it.
    await deleteSchedules();
    worker?.shutdown();
    await running?.catch(() => undefined);
    await closeConnection?.();
    await deps?.close();
  });

  /** Triggers a schedule and waits for the run its tick started. */
  const triggerAndWait = async (scheduleId: string): Promise<{ workflowId: string; result: Promise<unknown> }> => {
    const workflowId = await triggerSchedule(deps.temporal, scheduleId);
    expect(workflowId).toBeDefined();
    return { workflowId: workflowId!, result: deps.temporal.workflow.getHandle(workflowId!).result() };
  };

  const sourceCollections = async () =>
    (await deps.mongo.db!.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => !n.startsWith('system.'));

  it('creates both schedules with cron specs, overlap SKIP and a catch-up window', async () => {
    for (const id of scheduleIds) {
      const description = await deps.temporal.schedule.getHandle(id).describe();
      expect(description.policies.overlap).toBe('SKIP');
      expect(description.policies.catchupWindow).toBe(6 * 60 * 60 * 1000);
    }
    const nightly = await deps.temporal.schedule.getHandle(BACKUP_SCHEDULE_IDS.nightly).describe();
    expect(nightly.info.nextActionTimes[0]!.getUTCHours()).toBe(1);
    expect(nightly.info.nextActionTimes[0]!.getUTCMinutes()).toBe(30);
    const quarterly = await deps.temporal.schedule.getHandle(BACKUP_SCHEDULE_IDS.restoreCheck).describe();
    expect([0, 3, 6, 9]).toContain(quarterly.info.nextActionTimes[0]!.getUTCMonth());
    expect(quarterly.info.nextActionTimes[0]!.getUTCDate()).toBe(1);
  });

  let backup: BackupReport;

  it('takes a backup of every collection from the nightly schedule', async () => {
    const tick = await triggerAndWait(BACKUP_SCHEDULE_IDS.nightly);
    backup = (await tick.result) as BackupReport;
    await recordHistoryIfAsked(deps.temporal, tick.workflowId, 'backup-scheduled');

    expect(backup.requestedBy).toBe('schedule');
    expect(backup.dump.reused).toBe(false);
    const collections = await sourceCollections();
    expect(backup.dump.collections.map((c) => c.name).sort()).toEqual([...collections].sort());
    for (const c of backup.dump.collections) {
      expect(c.documents).toBe(await deps.mongo.db!.collection(c.name).countDocuments({}));
      const file = path.join(backupDir, backup.backupId, collectionFile(c.name));
      expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(c.documents);
    }
    expect(backup.dump.collections.find((c) => c.name === 'utxos')?.documents).toBe(1200);
    expect(existsSync(path.join(backupDir, backup.backupId, 'manifest.json'))).toBe(true);
    expect(backup.retention.kept).toContain(backup.backupId);
  });

  it('reruns a backup id without writing it again', async () => {
    const rerun = await deps.temporal.workflow.execute('backupWorkflow', {
      workflowId: `backup-rerun-${backup.backupId}`,
      taskQueue: 'patchproof-main',
      args: [{ backupId: backup.backupId, requestedBy: 'test' }],
    });
    expect((rerun as BackupReport).dump).toMatchObject({ reused: true, createdAt: backup.dump.createdAt, bytes: backup.dump.bytes });
  });

  it('removes what the retention policy does not keep, and only that', async () => {
    // Older complete backups, one manifest each, spread over two years.
    const storage = createDirectoryStorage(backupDir);
    const manifest = JSON.parse(readFileSync(path.join(backupDir, backup.backupId, 'manifest.json'), 'utf8')) as { createdAt: string };
    const start = new Date(manifest.createdAt).getTime();
    const oldIds: string[] = [];
    for (let i = 1; i <= 60; i++) {
      const createdAt = new Date(start - i * 12 * 86_400_000 - (i % 5) * 3_600_000);
      const backupId = `old-${String(i).padStart(3, '0')}`;
      oldIds.push(backupId);
      const writer = await storage.openWrite(backupId, 'manifest.json');
      await writer.write(
        JSON.stringify({ format: 'patchproof-ejson/1', backupId, database: 'x', createdAt: createdAt.toISOString(), collections: [] }),
      );
      await writer.close();
    }
    // Interrupted backups: one named by a start time two days ago, one named by hand, one started just now.
    const stale = backupIdAt(new Date(Date.now() - 2 * 86_400_000));
    const fresh = backupIdAt(new Date(Date.now() - 60_000));
    for (const id of [stale, 'named-interrupted', fresh]) {
      const partial = await storage.openWrite(id, 'utxos.ejson');
      await partial.write('{}\n');
      await partial.close();
    }
    const before = (await listManifests(storage)).map((m) => ({ backupId: m.backupId, createdAt: new Date(m.createdAt) }));
    const expected = applyRetention(before, { daily: 7, weekly: 4, monthly: 12 });

    const tick = await triggerAndWait(BACKUP_SCHEDULE_IDS.nightly);
    const report = (await tick.result) as BackupReport;
    expect(report.retention.removed.length).toBeGreaterThan(0);
    const after = readdirSync(backupDir);
    for (const removed of report.retention.removed) expect(after).not.toContain(removed);
    for (const kept of report.retention.kept) expect(after).toContain(kept);
    // The tick's own backup joins the set; everything the policy removed before it is still removed.
    for (const removed of expected.remove) expect(report.retention.removed).toContain(removed.backupId);
    expect(report.retention.kept.length).toBeLessThanOrEqual(7 + 4 + 12);
    expect(report.retention.abandoned).toEqual([stale]);
    expect(report.retention.incomplete).toEqual(expect.arrayContaining(['named-interrupted', fresh]));
    expect(after).not.toContain(stale);
    expect(after).toEqual(expect.arrayContaining(['named-interrupted', fresh]));
    // The first backup of the day gave way to this one (newest of the day): later tests use the survivor.
    expect(report.retention.kept[0]).toBe(report.backupId);
    backup = report;
  });

  it('restores the newest backup into a scratch database from the quarterly schedule and finds every collection and index', async () => {
    const tick = await triggerAndWait(BACKUP_SCHEDULE_IDS.restoreCheck);
    const report = (await tick.result) as RestoreCheckReport;
    await recordHistoryIfAsked(deps.temporal, tick.workflowId, 'restore-check-ok');

    expect(report.problems).toEqual([]);
    expect(report.status).toBe('ok');
    const newest = (await listManifests(createDirectoryStorage(backupDir))).at(-1)!;
    expect(report.backupId).toBe(newest.backupId);
    const collections = await sourceCollections();
    expect(report.collections.map((c) => c.name).sort()).toEqual([...collections].sort());
    for (const c of report.collections) {
      expect(c.documents).toBe(await deps.mongo.db!.collection(c.name).countDocuments({}));
      const sourceIndexes = (await listIndexDocuments(deps.mongo.db!.collection(c.name))).map((ix) => String(ix.name));
      expect([...c.expectedIndexes].sort()).toEqual([...sourceIndexes].sort());
      expect(c.missingIndexes).toEqual([]);
    }
    expect(report.collections.find((c) => c.name === 'bson_types')?.expectedIndexes).toContain('at_nested');
    expect(report.scratchDropped).toBe(true);
    const databases = (await deps.mongo.db!.admin().listDatabases({ nameOnly: true })).databases.map((d) => d.name);
    expect(databases).not.toContain(report.scratchDatabase);
  });

  it('restores every BSON type exactly as it was dumped', async () => {
    // The restore check drops its scratch database; restore once more by hand to compare documents.
    const { restoreDatabase } = await import('../../../src/backup/dump');
    const target = deps.mongo.getClient().db(`${deps.mongo.db!.databaseName}_restore_check_manual`);
    try {
      await restoreDatabase(target, createDirectoryStorage(backupDir), backup.backupId);
      const original = await deps.mongo.db!.collection('bson_types').find({}).sort({ _id: 1 }).toArray();
      const restored = await target.collection('bson_types').find({}).sort({ _id: 1 }).toArray();
      expect(mongo.BSON.EJSON.stringify(restored, { relaxed: false })).toBe(mongo.BSON.EJSON.stringify(original, { relaxed: false }));
      expect(restored[0]!.big).toBeInstanceOf(Long);
    } finally {
      await target.dropDatabase();
    }
  });

  it('reports a corrupted backup as a failed check, and still drops the scratch database', async () => {
    const file = path.join(backupDir, backup.backupId, collectionFile('utxos'));
    writeFileSync(file, readFileSync(file, 'utf8').replace('"satoshis":{"$numberInt":"1000"}', '"satoshis":{"$numberInt":"1"}'));
    const started = await startRestoreCheck(deps.temporal, { backupId: backup.backupId, requestedBy: 'test' });
    const report = (await deps.temporal.workflow.getHandle(started.workflowId).result()) as RestoreCheckReport;
    await recordHistoryIfAsked(deps.temporal, started.workflowId, 'restore-check-corrupt');
    expect(report.status).toBe('failed');
    expect(report.problems.join('\n')).toMatch(/checksum of utxos\.ejson does not match/);
    expect(report.collections).toEqual([]);
    expect(report.scratchDropped).toBe(true);
    const databases = (await deps.mongo.db!.admin().listDatabases({ nameOnly: true })).databases.map((d) => d.name);
    expect(databases).not.toContain(report.scratchDatabase);
  });

  it('fails a restore check of a backup that does not exist', async () => {
    const started = await startRestoreCheck(deps.temporal, { backupId: 'no-such-backup', requestedBy: 'test' });
    const result = deps.temporal.workflow.getHandle(started.workflowId).result();
    await expect(result).resolves.toMatchObject({ status: 'failed', problems: [expect.stringMatching(/not found/)] });
  });

  it('rejects an invalid backup id without retrying', async () => {
    await expect(
      deps.temporal.workflow.execute('backupWorkflow', {
        workflowId: 'backup-invalid-id-test',
        taskQueue: 'patchproof-main',
        args: [{ backupId: '../etc', requestedBy: 'test' }],
      }),
    ).rejects.toBeInstanceOf(WorkflowFailedError);
  });
});

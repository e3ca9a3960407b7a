import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { ensureIndexes } from '../../../src/db/indexes';
import { registerModels } from '../../../src/db/models';
import { HOT_QUERIES, type ProfileReport } from '../../../src/db/profiler';
import type { BackupReport, RestoreCheckReport } from '../../../workflows/backup/shared';
import { runEntry } from '../../support/processes';
import { connectTestDeps, createTestWorker, testEnvironment, type TestDeps } from '../../support/stack';
import { testEnv } from '../../support/testEnv';

const CLI = 'ops/cli/patchproof.ts';

describe('patchproof backup and profile-db (the real binary)', () => {
  let deps: TestDeps;
  let worker: Worker;
  let connection: NativeConnection;
  let running: Promise<void>;
  let env: Record<string, string>;

  beforeAll(async () => {
    const backupDir = mkdtempSync(path.join(testEnv('scratchDir'), 'cli-backups-'));
    deps = await connectTestDeps('worker', { BACKUP_DIR: backupDir });
    registerModels(deps.mongo);
    await ensureIndexes(deps.mongo);
    await deps.mongo
      .db!.collection('utxos')
      .insertMany(
        Array.from({ length: 25 }, (_, i) => ({ _id: `cli:${i}` as never, status: 'available', keyIdentifier: 'funding', satoshis: i })),
      );
    ({ worker, connection } = await createTestWorker(deps));
    running = worker.run();
    env = { ...testEnvironment(), MONGODB_URI: deps.config.mongo.uri, BACKUP_DIR: backupDir };
  });

  afterAll(async () => {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await connection?.close();
    await deps?.close();
  });

  it('runs a backup, lists it, and checks that it restores', async () => {
    const run = await runEntry(CLI, ['--json', 'backup', 'run', '--backup-id', 'cli-backup-1'], env);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as BackupReport;
    expect(report).toMatchObject({ backupId: 'cli-backup-1', requestedBy: 'cli', dump: { reused: false } });
    expect(report.dump.collections.find((c) => c.name === 'utxos')?.documents).toBe(25);

    const list = await runEntry(CLI, ['backup', 'list'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^1 backups in /);
    expect(list.stdout).toContain('cli-backup-1');

    const check = await runEntry(CLI, ['--json', 'backup', 'restore-check', '--check-id', 'cli-check-1'], env);
    expect(check.code).toBe(0);
    const checked = JSON.parse(check.stdout) as RestoreCheckReport;
    expect(checked).toMatchObject({ backupId: 'cli-backup-1', status: 'ok', scratchDropped: true, problems: [] });
    expect(checked.collections.map((c) => c.name).sort()).toEqual(report.dump.collections.map((c) => c.name).sort());
  });

  it('restores a backup into a new database beside the live one, and refuses the live one', async () => {
    const live = deps.mongo.db!.databaseName;
    const into = `${live}_restored`;
    try {
      const restored = await runEntry(CLI, ['backup', 'restore', '--backup-id', 'cli-backup-1', '--into', into], env);
      expect(restored.stdout).toContain(`restored backup cli-backup-1 into ${into}`);
      expect(restored.code).toBe(0);
      const target = deps.mongo.getClient().db(into);
      expect(await target.collection('utxos').countDocuments({})).toBe(25);
      // Not twice into the same database: it is no longer empty.
      expect((await runEntry(CLI, ['backup', 'restore', '--backup-id', 'cli-backup-1', '--into', into], env)).code).toBe(2);
    } finally {
      await deps.mongo.getClient().db(into).dropDatabase();
    }
    const refused = await runEntry(CLI, ['backup', 'restore', '--backup-id', 'cli-backup-1', '--into', live], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('is the database MONGODB_URI names');
  });

  it('exits 1 when the named backup does not restore, and 2 on a malformed id', async () => {
    const check = await runEntry(CLI, ['backup', 'restore-check', '--backup-id', 'missing-backup'], env);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain('FAILED');
    expect(check.stdout).toMatch(/problem: restore failed: backup missing-backup not found/);
    expect((await runEntry(CLI, ['backup', 'run', '--backup-id', '../x'], env)).code).toBe(2);
  });

  it('profile-db plans every hot query and reports what the database does not implement', async () => {
    const result = await runEntry(CLI, ['--json', 'profile-db'], env);
    const report = JSON.parse(result.stdout) as ProfileReport;
    expect(report.plans.map((p) => p.name)).toEqual(HOT_QUERIES.map((q) => q.name));
    expect(report.plans.every((p) => p.status === 'ok' && p.plan.length > 0)).toBe(true);
    if (report.profiler.status === 'not_implemented') {
      // FerretDB: no profiler, no slow-operation log; the stand-in says so instead of failing.
      expect(report.slowOperations).toBeNull();
      expect(report.notImplemented.join('\n')).toContain('profiler');
    } else {
      expect(Array.isArray(report.slowOperations)).toBe(true);
    }
    expect(result.code).toBe(report.plans.some((p) => p.usesExpectedIndex === false) ? 1 : 0);
    const human = await runEntry(CLI, ['profile-db'], env);
    expect(human.stdout).toContain('hot queries:');
    expect((await runEntry(CLI, ['profile-db', '--level', '5'], env)).code).toBe(2);
  });
});

import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { listManifests, restoreDatabase, userCollections } from '../../src/backup/dump';
import { isValidBackupId } from '../../src/backup/ids';
import { startBackup, startRestoreCheck } from '../../src/backup/launch';
import { createDirectoryStorage } from '../../src/backup/storage';
import type { AppConfig } from '../../src/config';
import { connectMongo } from '../../src/db/mongo';
import { profileDatabase, type ProfileReport } from '../../src/db/profiler';
import type { LaunchResult } from '../../src/temporal/launch';
import type { BackupReport, RestoreCheckReport } from '../../workflows/backup/shared';
import { CliFailure, connectTemporal, EXIT, output, webUiLink, type Output, type CliContext } from './common';

const WAIT_LIMIT_MS = 2 * 60 * 60 * 1000;

/** Starts (or attaches to) a backup workflow, waits for its result unless --no-wait, and prints it. */
async function runAndReport<R>(
  config: AppConfig,
  out: Output,
  launch: (client: Client) => Promise<LaunchResult>,
  wait: boolean,
  describe: (result: R) => { text: string; ok: boolean },
): Promise<number> {
  const client = await connectTemporal(config);
  try {
    const started = await launch(client);
    out.progress(`${started.alreadyStarted ? 'attached to' : 'started'} workflow ${started.workflowId} (run ${started.runId})`);
    const link = webUiLink(config, started.workflowId, started.runId);
    if (link) out.progress(`  Web UI: ${link}`);
    if (!wait) {
      out.result(started, `follow it with: temporal workflow describe --workflow-id ${started.workflowId}`);
      return EXIT.ok;
    }
    const result = await Promise.race([
      client.workflow.getHandle(started.workflowId, started.runId).result() as Promise<R>,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new CliFailure('gave up waiting; the run goes on', EXIT.problem)), WAIT_LIMIT_MS).unref(),
      ),
    ]).catch((err: unknown) => {
      if (err instanceof CliFailure) throw err;
      const cause = (err as { cause?: Error }).cause;
      throw new CliFailure(`${started.workflowId} failed: ${cause?.message ?? (err as Error).message}`, EXIT.problem);
    });
    const { text, ok } = describe(result);
    out.result(result, text);
    return ok ? EXIT.ok : EXIT.problem;
  } finally {
    await client.connection.close();
  }
}

function describeBackup(report: BackupReport): { text: string; ok: boolean } {
  const documents = report.dump.collections.reduce((sum, c) => sum + c.documents, 0);
  return {
    ok: true,
    text: [
      `backup ${report.backupId}: ${report.dump.reused ? 'already complete (nothing written)' : 'written'} to ${report.dump.location}`,
      `  ${report.dump.collections.length} collections, ${documents} documents, ${report.dump.bytes} bytes`,
      `  retention: kept ${report.retention.kept.length}, removed ${report.retention.removed.length}${report.retention.removed.length ? ` (${report.retention.removed.join(', ')})` : ''}`,
    ].join('\n'),
  };
}

function describeRestoreCheck(report: RestoreCheckReport): { text: string; ok: boolean } {
  const lines = [`restore check of backup ${report.backupId}: ${report.status.toUpperCase()} (scratch ${report.scratchDatabase}, dropped)`];
  for (const c of report.collections) {
    lines.push(
      `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(22)} ${c.documents}/${c.expectedDocuments} documents, ${c.expectedIndexes.length - c.missingIndexes.length}/${c.expectedIndexes.length} indexes${c.indexesNotImplemented.length ? ` (not_implemented: ${c.indexesNotImplemented.join(', ')})` : ''}`,
    );
  }
  for (const problem of report.problems) lines.push(`  problem: ${problem}`);
  return { text: lines.join('\n'), ok: report.status === 'ok' };
}

function describeProfile(report: ProfileReport): string {
  const p = report.profiler;
  const lines = [
    `database ${report.database}`,
    p.status === 'ok'
      ? `  profiler level ${p.level} (slowms ${p.slowms})${p.previousLevel !== undefined ? `, was ${p.previousLevel}` : ''}`
      : `  profiler not_implemented (${p.error ?? ''})`,
  ];
  if (report.slowOperations) {
    lines.push(`  slowest operations (${report.slowOperations.length}):`);
    for (const op of report.slowOperations) {
      lines.push(`    ${String(op.millis).padStart(6)} ms ${op.op} ${op.ns} ${op.planSummary ?? ''} ${op.commandShape}`);
    }
  }
  lines.push('  hot queries:');
  for (const plan of report.plans) {
    const verdict =
      plan.status !== 'ok' ? plan.status : plan.usesExpectedIndex === null ? 'plan' : plan.usesExpectedIndex ? 'uses index' : 'NO INDEX';
    lines.push(
      `    ${verdict.padEnd(15)} ${plan.name} (${plan.collection}, expects ${plan.expectedIndex}): ${plan.plan || plan.error || ''}`,
    );
  }
  for (const missing of report.notImplemented) lines.push(`  not_implemented: ${missing}`);
  return lines.join('\n');
}

function checkedBackupId(value: string | undefined): string | undefined {
  if (value !== undefined && !isValidBackupId(value))
    throw new CliFailure('--backup-id: 1–64 characters of A–Z, a–z, 0–9, _ or -', EXIT.usage);
  return value;
}

export function registerBackupCommands(program: Command, context: CliContext): void {
  const backup = program.command('backup').description('Backups of MongoDB: run one now, list them, check that one restores.');

  backup
    .command('run')
    .description('Run a BackupWorkflow now: dump every collection, then apply the retention policy.')
    .option('--backup-id <id>', 'name of the backup (default: the current UTC time); the same id never writes twice')
    .option('--no-wait', 'start it and return without waiting for the report')
    .action((options: { backupId?: string; wait: boolean }) =>
      context.withConfig((config) => {
        const backupId = checkedBackupId(options.backupId);
        return runAndReport<BackupReport>(
          config,
          output(context.json()),
          (client) => startBackup(client, { ...(backupId && { backupId }), requestedBy: 'cli' }),
          options.wait,
          describeBackup,
        );
      }),
    );

  backup
    .command('restore-check')
    .description('Run a RestoreCheckWorkflow: restore a backup into a scratch database, check counts and indexes, drop it.')
    .option('--backup-id <id>', 'the backup to check (default: the newest complete one)')
    .option('--check-id <id>', 'idempotency key: the same id attaches to the same run')
    .option('--no-wait', 'start it and return without waiting for the report')
    .action((options: { backupId?: string; checkId?: string; wait: boolean }) =>
      context.withConfig((config) => {
        const backupId = checkedBackupId(options.backupId);
        const checkId = checkedBackupId(options.checkId);
        return runAndReport<RestoreCheckReport>(
          config,
          output(context.json()),
          (client) => startRestoreCheck(client, { ...(backupId && { backupId }), ...(checkId && { checkId }), requestedBy: 'cli' }),
          options.wait,
          describeRestoreCheck,
        );
      }),
    );

  backup
    .command('list')
    .description('List the complete backups in BACKUP_DIR, oldest first.')
    .action(() =>
      context.withConfig(async (config) => {
        const out = output(context.json());
        const storage = createDirectoryStorage(config.backup.dir);
        const manifests = await listManifests(storage);
        const rows = manifests.map((m) => ({
          backupId: m.backupId,
          createdAt: m.createdAt,
          database: m.database,
          collections: m.collections.length,
          documents: m.collections.reduce((sum, c) => sum + c.documents, 0),
          bytes: m.collections.reduce((sum, c) => sum + c.bytes, 0),
        }));
        out.result(
          { location: storage.location, backups: rows },
          [
            `${rows.length} backups in ${storage.location}`,
            ...rows.map((r) => `  ${r.backupId}  ${r.createdAt}  ${r.collections} collections, ${r.documents} documents, ${r.bytes} bytes`),
          ].join('\n'),
        );
        return EXIT.ok;
      }),
    );

  backup
    .command('restore')
    .description('Restore a backup into a new database (never the configured one); then point MONGODB_URI at it.')
    .requiredOption('--backup-id <id>', 'the backup to restore')
    .requiredOption('--into <database>', 'name of the database to restore into; it must not exist or be empty')
    .action((options: { backupId: string; into: string }) =>
      context.withConfig(async (config) => {
        const backupId = checkedBackupId(options.backupId)!;
        if (!/^[A-Za-z0-9_-]{1,63}$/.test(options.into)) throw new CliFailure('--into: 1–63 characters of A–Z a–z 0–9 _ -', EXIT.usage);
        const out = output(context.json());
        const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
          throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
        });
        try {
          if (options.into === mongo.db!.databaseName) {
            throw new CliFailure(`--into: ${options.into} is the database MONGODB_URI names; restore beside it, then switch`, EXIT.usage);
          }
          const target = mongo.getClient().db(options.into);
          // The restore drops its target first: refuse a database that already holds collections.
          if ((await userCollections(target)).length > 0) throw new CliFailure(`--into: ${options.into} is not empty`, EXIT.usage);
          const { collections } = await restoreDatabase(target, createDirectoryStorage(config.backup.dir), backupId, {
            onProgress: (collection, documents) => out.progress(`  ${collection}: ${documents} documents`),
          });
          const notImplemented = collections.flatMap((c) => c.indexesNotImplemented.map((i) => `${c.name}.${i}`));
          out.result(
            { backupId, database: options.into, collections },
            [
              `restored backup ${backupId} into ${options.into}: ${collections.length} collections, ${collections.reduce((n, c) => n + c.documents, 0)} documents`,
              ...(notImplemented.length ? [`  indexes not_implemented by this database: ${notImplemented.join(', ')}`] : []),
              '  next: set MONGODB_URI to this database and restart the API and workers (docs/OPERATIONS.md#restoring-from-a-backup)',
            ].join('\n'),
          );
          return EXIT.ok;
        } catch (err) {
          if (err instanceof CliFailure) throw err;
          throw new CliFailure((err as Error).message, EXIT.problem);
        } finally {
          await mongo.close();
        }
      }),
    );

  program
    .command('profile-db')
    .description('Slow-query tooling: profiler level and slowest operations, and the plans of the hot queries.')
    .option('--level <n>', 'set the profiler level: 0 off, 1 slow operations, 2 all (staging only)')
    .option('--slow-ms <ms>', 'threshold of a slow operation when setting the level', '100')
    .option('--limit <n>', 'slowest operations to list', '20')
    .action((options: { level?: string; slowMs: string; limit: string }) =>
      context.withConfig(async (config) => {
        const level = options.level === undefined ? undefined : Number(options.level);
        const slowms = Number(options.slowMs);
        const limit = Number(options.limit);
        if (level !== undefined && ![0, 1, 2].includes(level)) throw new CliFailure('--level: 0, 1 or 2', EXIT.usage);
        if (!Number.isInteger(slowms) || slowms < 0) throw new CliFailure('--slow-ms: a whole number of milliseconds', EXIT.usage);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliFailure('--limit: 1 to 1000', EXIT.usage);
        const out = output(context.json());
        const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
          throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
        });
        try {
          const report = await profileDatabase(mongo.db!, { ...(level !== undefined && { set: { level, slowms } }), limit });
          out.result(report, describeProfile(report));
          return report.plans.some((p) => p.status === 'failed' || p.usesExpectedIndex === false) ? EXIT.problem : EXIT.ok;
        } finally {
          await mongo.close();
        }
      }),
    );
}

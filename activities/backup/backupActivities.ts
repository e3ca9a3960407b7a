import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import type { Connection } from 'mongoose';
import type { BackupConfig } from '../../src/config';
import { backupIdTime, scratchDatabaseName } from '../../src/backup/ids';
import {
  BackupCorrupt,
  BackupNotFound,
  checkRestoredDatabase,
  dumpDatabase,
  listManifests,
  readManifest,
  restoreDatabase,
} from '../../src/backup/dump';
import { applyRetention } from '../../src/backup/retention';
import { createDirectoryStorage, type BackupStorage } from '../../src/backup/storage';
import type { Logger } from '../../src/logging/logger';
import { redactString } from '../../src/logging/redact';
import type { DumpResult, RestoreCollectionCheck, RestoredSummary, RetentionResult } from '../../workflows/backup/shared';

/** An interrupted backup named by its start time is abandoned after this long (a dump is bounded by 2 hours). */
const ABANDONED_AFTER_MS = 24 * 60 * 60 * 1000;

export interface BackupActivityDeps {
  mongo: Connection;
  logger: Logger;
  backup: BackupConfig;
  /** The backup store; the directory BACKUP_DIR unless given (an object store implements the same interface). */
  backupStorage?: BackupStorage;
}

/** Activities of the backup and restore-check workflows. Each is idempotent for the same inputs. */
export function createBackupActivities({ mongo, logger, backup, backupStorage }: BackupActivityDeps) {
  const storage = backupStorage ?? createDirectoryStorage(backup.dir);
  const sourceDb = () => {
    if (!mongo.db) throw new Error('MongoDB connection has no database');
    return mongo.db;
  };
  const scratchDb = (database: string) => {
    // Guard against a bug that would point a restore (which drops its target first) at the live database.
    if (database === sourceDb().databaseName || !database.includes('_restore_check_')) {
      throw ApplicationFailure.nonRetryable(`refusing to use ${database} as a scratch database`, 'UnsafeScratchDatabase');
    }
    return mongo.getClient().db(database);
  };
  const failure = (err: unknown): unknown => {
    if (err instanceof BackupNotFound) return ApplicationFailure.nonRetryable(err.message, 'BackupNotFound');
    if (err instanceof BackupCorrupt) return ApplicationFailure.nonRetryable(err.message, 'BackupCorrupt');
    if (err instanceof Error) err.message = redactString(err.message);
    return err;
  };

  return {
    async dumpDatabase(input: { backupId: string; createdAt: string }): Promise<DumpResult> {
      try {
        const { manifest, reused } = await dumpDatabase(sourceDb(), storage, input.backupId, {
          now: new Date(input.createdAt),
          onProgress: (collection, documents) => heartbeat({ collection, documents }),
        });
        const result: DumpResult = {
          backupId: manifest.backupId,
          location: storage.location,
          database: manifest.database,
          createdAt: manifest.createdAt,
          reused,
          bytes: manifest.collections.reduce((sum, c) => sum + c.bytes, 0),
          collections: manifest.collections.map((c) => ({ name: c.name, documents: c.documents, indexes: c.indexes.length })),
        };
        logger.info(reused ? 'backup already complete' : 'backup written', {
          backupId: result.backupId,
          collections: result.collections.length,
          bytes: result.bytes,
        });
        return result;
      } catch (err) {
        throw failure(err);
      }
    },

    async applyBackupRetention(): Promise<RetentionResult> {
      const manifests = await listManifests(storage);
      const dated = manifests.map((m) => ({ backupId: m.backupId, createdAt: new Date(m.createdAt) }));
      const decision = applyRetention(dated, backup.retention);
      for (const old of decision.remove) await storage.remove(old.backupId);
      // Folders without a manifest are interrupted backups. One named by its start time and older than a day can
      // no longer be running: remove it. Named ones are left for an operator (they are listed in the report).
      const complete = new Set(manifests.map((m) => m.backupId));
      const incomplete = (await storage.list()).filter((id) => !complete.has(id));
      const abandoned = incomplete.filter((id) => {
        const started = backupIdTime(id);
        return started !== null && Date.now() - started.getTime() > ABANDONED_AFTER_MS;
      });
      for (const id of abandoned) await storage.remove(id);
      const result: RetentionResult = {
        kept: decision.keep.map((b) => b.backupId),
        removed: decision.remove.map((b) => b.backupId),
        abandoned,
        incomplete: incomplete.filter((id) => !abandoned.includes(id)),
      };
      logger.info('backup retention applied', { kept: result.kept.length, removed: result.removed, abandoned });
      return result;
    },

    async latestBackupId(): Promise<string | null> {
      return (await listManifests(storage)).at(-1)?.backupId ?? null;
    },

    scratchDatabaseFor(suffix: string): Promise<string> {
      return Promise.resolve(scratchDatabaseName(sourceDb().databaseName, suffix));
    },

    async restoreBackup(input: { backupId: string; database: string }): Promise<RestoredSummary> {
      try {
        const { collections } = await restoreDatabase(scratchDb(input.database), storage, input.backupId, {
          onProgress: (collection, documents) => heartbeat({ collection, documents }),
        });
        logger.info('backup restored for a check', { backupId: input.backupId, database: input.database });
        return {
          backupId: input.backupId,
          database: input.database,
          documents: collections.reduce((sum, c) => sum + c.documents, 0),
          indexesNotImplemented: Object.fromEntries(
            collections.filter((c) => c.indexesNotImplemented.length > 0).map((c) => [c.name, c.indexesNotImplemented]),
          ),
        };
      } catch (err) {
        throw failure(err);
      }
    },

    async checkRestoredDatabase(input: {
      backupId: string;
      database: string;
      restored: RestoredSummary;
    }): Promise<RestoreCollectionCheck[]> {
      const manifest = await readManifest(storage, input.backupId);
      if (!manifest) throw failure(new BackupNotFound(input.backupId));
      return checkRestoredDatabase(scratchDb(input.database), manifest, input.restored.indexesNotImplemented);
    },

    async dropScratchDatabase(input: { database: string }): Promise<void> {
      await scratchDb(input.database).dropDatabase();
      logger.info('restore check scratch database dropped', { database: input.database });
    },
  };
}

export type BackupActivities = ReturnType<typeof createBackupActivities>;

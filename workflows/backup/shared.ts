/** Types shared by the backup workflows, their activities and their callers (CLI, tests). Type imports only. */

import type { CollectionCheck } from '../../src/backup/dump';

export type BackupTrigger = 'schedule' | 'cli' | 'test';

export interface BackupInput {
  /** Without one, the run's start time names the backup (`20261128T013000Z`). */
  backupId?: string;
  requestedBy: BackupTrigger;
}

export interface BackupCollectionSummary {
  name: string;
  documents: number;
  indexes: number;
}

export interface DumpResult {
  backupId: string;
  location: string;
  database: string;
  createdAt: string;
  /** True when the backup already existed complete: the rerun wrote nothing. */
  reused: boolean;
  bytes: number;
  collections: BackupCollectionSummary[];
}

export interface RetentionResult {
  kept: string[];
  removed: string[];
  /** Interrupted backups (no manifest) named by a start time more than a day ago: removed. */
  abandoned?: string[];
  /** Other folders without a manifest, left in place: a named backup that failed, or one still being written. */
  incomplete?: string[];
}

export interface BackupReport {
  backupId: string;
  requestedBy: BackupTrigger;
  dump: DumpResult;
  retention: RetentionResult;
}

export interface RestoreCheckInput {
  /** Without one, the newest complete backup is checked. */
  backupId?: string;
  requestedBy: BackupTrigger;
}

export interface RestoredSummary {
  backupId: string;
  database: string;
  /** Per collection, the indexes the target database cannot build (FerretDB); not counted as missing. */
  indexesNotImplemented: Record<string, string[]>;
  documents: number;
}

/** One collection of a restore check: counts, indexes and whether it passed (src/backup/dump.ts computes it). */
export type RestoreCollectionCheck = CollectionCheck;

export interface RestoreCheckReport {
  backupId: string;
  requestedBy: BackupTrigger;
  status: 'ok' | 'failed';
  scratchDatabase: string;
  collections: RestoreCollectionCheck[];
  /** One line per problem found; empty when ok. */
  problems: string[];
  scratchDropped: boolean;
}

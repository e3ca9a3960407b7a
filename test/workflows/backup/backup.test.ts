import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { backupWorkflow, restoreCheckWorkflow } from '../../../workflows';
import type { DumpResult, RestoreCollectionCheck } from '../../../workflows/backup/shared';
import { timeSkippingEnvForBlock } from '../../support/timeSkipping';
import { mockActivities, withWorker } from '../../support/workflowWorker';

const BACKUP_ID = '20261128T013000Z';

function backupActivities(collections: RestoreCollectionCheck[]) {
  return mockActivities({
    dumpDatabase: async ({ backupId, createdAt }): Promise<DumpResult> => ({
      backupId,
      location: `/backups/${backupId}`,
      database: 'patchproof',
      createdAt,
      reused: false,
      bytes: 1_024,
      collections: collections.map((c) => ({ name: c.name, documents: c.expectedDocuments, indexes: 1 })),
    }),
    applyBackupRetention: async () => ({ kept: [BACKUP_ID], removed: [] }),
    latestBackupId: async () => BACKUP_ID,
    scratchDatabaseFor: async (suffix) => `restore-check-${suffix}`,
    restoreBackup: async ({ backupId, database }) => ({ backupId, database, indexesNotImplemented: {}, documents: 0 }),
    checkRestoredDatabase: async () => collections,
    dropScratchDatabase: async () => undefined,
  });
}

function collection(
  name: string,
  expectedDocuments: number,
  documents = expectedDocuments,
  missingIndexes: string[] = [],
): RestoreCollectionCheck {
  const expectedIndexes = ['_id_', ...missingIndexes];
  const ok = documents === expectedDocuments && missingIndexes.length === 0;
  return { name, expectedDocuments, documents, expectedIndexes, missingIndexes, indexesNotImplemented: [], ok };
}

describe('backup workflows', () => {
  const server = timeSkippingEnvForBlock();

  it('dumps under the named backup id, then applies the retention policy', async () => {
    const activities = backupActivities([collection('patches', 3)]);
    const report = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `backup-${BACKUP_ID}`,
        args: [{ backupId: BACKUP_ID, requestedBy: 'test' }],
      }),
    );
    expect(report).toMatchObject({
      backupId: BACKUP_ID,
      requestedBy: 'test',
      dump: { backupId: BACKUP_ID },
      retention: { kept: [BACKUP_ID] },
    });
    expect(activities.dumpDatabase).toHaveBeenCalledWith(expect.objectContaining({ backupId: BACKUP_ID }));
    expect(activities.applyBackupRetention).toHaveBeenCalledTimes(1);
  });

  it('refuses an invalid backup id before dumping anything', async () => {
    const activities = backupActivities([]);
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: 'backup-bad',
        args: [{ backupId: '../etc', requestedBy: 'test' }],
      }),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'InvalidBackupId' });
    expect(activities.dumpDatabase).not.toHaveBeenCalled();
  });

  it('fails after the dump’s attempts run out and applies no retention', async () => {
    const activities = mockActivities({
      ...backupActivities([]),
      dumpDatabase: async () => {
        throw ApplicationFailure.retryable('disk full', 'BackupWriteFailed');
      },
    });
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: 'backup-full-disk',
        args: [{ backupId: BACKUP_ID, requestedBy: 'test' }],
      }),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause?.cause).toMatchObject({ type: 'BackupWriteFailed', message: 'disk full' });
    // The dump's retry policy in workflows/backup/backup.ts: five attempts.
    expect(activities.dumpDatabase).toHaveBeenCalledTimes(5);
    expect(activities.applyBackupRetention).not.toHaveBeenCalled();
  });

  it('checks the newest backup in a scratch database, lists each mismatch, and drops the scratch database', async () => {
    const collections = [collection('patches', 5, 4), collection('transfers', 2, 2, ['uid_1'])];
    const activities = backupActivities(collections);
    const report = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(restoreCheckWorkflow, { taskQueue, workflowId: 'restore-check', args: [{ requestedBy: 'test' }] }),
    );
    expect(report).toMatchObject({ backupId: BACKUP_ID, status: 'failed', scratchDropped: true, collections });
    expect(report.problems).toHaveLength(2);
    expect(report.problems[0]).toContain('patches');
    expect(report.problems[1]).toContain('uid_1');
    expect(activities.restoreBackup).toHaveBeenCalledWith({ backupId: BACKUP_ID, database: report.scratchDatabase });
    expect(activities.dropScratchDatabase).toHaveBeenCalledWith({ database: report.scratchDatabase });
  });

  it('reports a restore that fails as a problem and still drops the scratch database', async () => {
    const activities = mockActivities({
      ...backupActivities([]),
      restoreBackup: async () => {
        throw ApplicationFailure.nonRetryable('archive truncated', 'RestoreFailed');
      },
    });
    const report = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(restoreCheckWorkflow, {
        taskQueue,
        workflowId: 'restore-broken',
        args: [{ backupId: BACKUP_ID, requestedBy: 'test' }],
      }),
    );
    expect(report.status).toBe('failed');
    expect(report.problems).toEqual([expect.stringContaining('archive truncated')]);
    expect(activities.checkRestoredDatabase).not.toHaveBeenCalled();
    expect(activities.dropScratchDatabase).toHaveBeenCalledWith({ database: report.scratchDatabase });
  });

  it('fails when there is no complete backup to check', async () => {
    const activities = mockActivities({ ...backupActivities([]), latestBackupId: async () => null });
    const failure = await withWorker(server.env, activities, (taskQueue) =>
      server.env.client.workflow.execute(restoreCheckWorkflow, { taskQueue, workflowId: 'restore-none', args: [{ requestedBy: 'test' }] }),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'BackupNotFound' });
    expect(activities.scratchDatabaseFor).not.toHaveBeenCalled();
  });
});

import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { createApp } from '../../../api/app';
import { BACKUP_SCHEDULE_IDS } from '../../../src/backup/ids';
import { startBackup } from '../../../src/backup/launch';
import { loadConfig } from '../../../src/config';
import { ensureIndexes } from '../../../src/db/indexes';
import { registerModels } from '../../../src/db/models';
import { POOL_SCHEDULE_IDS } from '../../../src/pool/ids';
import { startTopUp, waitForPoolOperation } from '../../../src/pool/launch';
import { SYSTEM_CHECK_SCHEDULE_ID } from '../../../src/system/ids';
import { desiredSchedules, reconcileSchedules } from '../../../workers/schedules';
import { listen, type Listening } from '../../support/http';
import { POOL_TEST_KMS_KEY, startPoolStack, type PoolStack } from '../../support/poolStack';
import { REPO_ROOT } from '../../support/processes';
import { runbookBlocks } from '../../support/runbook';
import { testEnvironment } from '../../support/stack';
import { testEnv } from '../../support/testEnv';

/**
 * Runs every command of the `runbook-check` blocks of docs/OPERATIONS.md, as written, against the test stack: a
 * worker with the production workflows, the API, the dev KMS and the chain simulator. Only the dev addresses are
 * rewritten to the test stack's ports; `temporal` and our CLI find the stack through the same variables an operator
 * sets (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, MONGODB_URI, …).
 */
describe('the runbook (docs/OPERATIONS.md) against a running stack', () => {
  let stack: PoolStack;
  let api: Listening;
  let env: Record<string, string>;
  let substitutions: [string, string][];
  const scheduleIds = [...Object.values(POOL_SCHEDULE_IDS), ...Object.values(BACKUP_SCHEDULE_IDS), SYSTEM_CHECK_SCHEDULE_ID];

  beforeAll(async () => {
    const backupDir = mkdtempSync(path.join(testEnv('scratchDir'), 'runbook-backups-'));
    stack = await startPoolStack({ BACKUP_DIR: backupDir, UTXO_MIN_POOL: '2', UTXO_SPLIT_SIZE_SATS: '3000' });
    registerModels(stack.deps.mongo);
    await ensureIndexes(stack.deps.mongo);
    api = await listen(createApp(stack.deps));

    // The schedules the worker creates at start with the default configuration.
    const config = loadConfig(
      testEnvironment({
        ...stack.env,
        BACKUP_DIR: backupDir,
        UTXO_TOPUP_EVERY: '15m',
        UTXO_SWEEP_CRON: '0 2 * * *',
        UTXO_RECONCILE_EVERY: '1h',
        SYSTEM_CHECK_EVERY: '15m',
        BACKUP_CRON: '30 1 * * *',
        BACKUP_RESTORE_CHECK_CRON: '0 4 1 1,4,7,10 *',
      }),
    );
    for (const id of scheduleIds) {
      await stack.deps.temporal.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
    await reconcileSchedules(stack.deps.temporal, desiredSchedules(config, stack.accounts));

    // A healthy pool (target 2, both confirmed), one top-up dry run and one backup, as on a system in service.
    await stack.fund(stack.accounts.funding.address, 10_000);
    await stack.fund(stack.accounts.funding.address, 10_000);
    const dryRun = await startTopUp(stack.deps.temporal, stack.accounts.funding.keyIdentifier, { requestedBy: 'test', dryRun: true });
    await waitForPoolOperation(stack.deps.temporal, dryRun.workflowId, dryRun.runId, { pollMs: 200 });
    const backup = await startBackup(stack.deps.temporal, { requestedBy: 'test' });
    await stack.deps.temporal.workflow.getHandle(backup.workflowId).result();

    env = {
      ...testEnvironment(stack.env),
      MONGODB_URI: stack.deps.config.mongo.uri,
      BACKUP_DIR: backupDir,
      PORT: new URL(api.baseUrl).port,
      LOG_LEVEL: 'warn',
      PATH: `${path.dirname(testEnv('temporalCli'))}:${process.env.PATH ?? ''}`,
      HOME: process.env.HOME ?? '',
    };
    const kmsUrl = stack.env.KMS_SIGN_URL!;
    substitutions = [
      ['http://127.0.0.1:3001', api.baseUrl],
      ['http://127.0.0.1:8091', stack.simulator.baseUrl],
      ['http://127.0.0.1:8090', kmsUrl],
      ['dev-kms-api-key-not-for-production', POOL_TEST_KMS_KEY],
    ];
  }, 180_000);

  afterAll(async () => {
    for (const id of scheduleIds) {
      await stack?.deps.temporal.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
    await api?.close();
    await stack?.close();
  });

  const runCommand = (command: string): Promise<{ code: number; output: string }> =>
    new Promise((resolve) => {
      execFile('bash', ['-o', 'pipefail', '-c', command], { cwd: REPO_ROOT, env, timeout: 120_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}`.slice(-2000) }),
      );
    });

  it('exits 0 for every non-destructive command of the runbook', async () => {
    const commands = runbookBlocks()
      .filter((b) => b.tag === 'runbook-check')
      .flatMap((b) => b.commands.map((command) => ({ line: b.line, command })));
    expect(commands.length).toBeGreaterThanOrEqual(20);
    const failures: string[] = [];
    for (const { line, command } of commands) {
      const local = substitutions.reduce((c, [from, to]) => c.split(from).join(to), command);
      const result = await runCommand(local);
      if (result.code !== 0) failures.push(`block at line ${line}: \`${command}\` exited ${result.code}\n${result.output}`);
    }
    expect(failures).toEqual([]);
  }, 900_000);
});

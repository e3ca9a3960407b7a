import { Worker } from '@temporalio/worker';
import * as workflows from '../../workflows';
import { loadRecordedHistories } from '../support/histories';
import { testEnv } from '../support/testEnv';

/**
 * Replays every recorded history in test/histories/ against the current workflow bundle. A change to a workflow
 * that would break running executions (a non-deterministic change without patched()) fails here.
 * Record new histories with: PATCHPROOF_RECORD_HISTORIES=1 npx jest --selectProjects integration
 */
describe('workflow replay', () => {
  const histories = loadRecordedHistories();

  it('has at least one recorded history for every workflow the worker registers', () => {
    const recordedTypes = new Set(histories.map((h) => h.workflowType));
    for (const workflowType of Object.keys(workflows)) expect(recordedTypes).toContain(workflowType);
  });

  it.each(histories.map((h) => [h.file, h] as const))('replays %s without a determinism error', async (_file, recorded) => {
    await expect(
      Worker.runReplayHistory({ workflowBundle: { codePath: testEnv('workflowBundle') } }, recorded.history, recorded.file),
    ).resolves.toBeUndefined();
  });

  it('detects a workflow change that breaks determinism', async () => {
    // Guard against a replay test that cannot fail: a history whose activity was scheduled under another type.
    const recorded = histories.find((h) => h.workflowType === 'systemCheckWorkflow')!;
    const tampered = JSON.parse(JSON.stringify(recorded.history).replace(/"probeMongo"/g, '"probeSomethingElse"')) as unknown;
    await expect(
      Worker.runReplayHistory({ workflowBundle: { codePath: testEnv('workflowBundle') } }, tampered, 'tampered'),
    ).rejects.toThrow();
  });
});

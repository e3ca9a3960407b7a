import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { provisionTimeSkippingServer } from '../../ops/dev-stack/provision';
import { TEST_ENV } from './testEnv';

/** What workflowsGlobalTeardown removes; Jest runs both hooks in the same process. */
export interface WorkflowTestState {
  __patchproofWorkflowScratch?: string;
}

/**
 * Setup of the `workflows` test project, which starts no service: finds (or builds once) the Java time-skipping
 * server and bundles the workflows once. Each test file starts its own time-skipping server from the wrapper and
 * loads the same bundle; both paths reach the test files through environment variables.
 */
export default async function workflowsGlobalSetup(): Promise<void> {
  const server = await provisionTimeSkippingServer({ say: (line) => process.stderr.write(`[workflow-tests] ${line}\n`) });
  const scratch = mkdtempSync(path.join(tmpdir(), 'patchproof-workflow-tests-'));
  (globalThis as WorkflowTestState).__patchproofWorkflowScratch = scratch;
  try {
    const bundlePath = path.join(scratch, 'workflow-bundle.js');
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: new DefaultLogger('WARN') });
    writeFileSync(bundlePath, code);
    process.env[TEST_ENV.workflowBundle] = bundlePath;
    process.env[TEST_ENV.timeSkippingServer] = server;
  } catch (err) {
    // Jest skips globalTeardown when globalSetup throws.
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
}

import { rmSync } from 'node:fs';
import type { WorkflowTestState } from './workflowsGlobalSetup';

/** Removes the scratch directory (the workflow bundle) of the `workflows` test project. */
export default function workflowsGlobalTeardown(): void {
  const scratch = (globalThis as WorkflowTestState).__patchproofWorkflowScratch;
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

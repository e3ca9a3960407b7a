import { rmSync } from 'node:fs';
import path from 'node:path';
import { stopServices, type TestStackState } from './globalSetup';
import { declaredIndexLeads, describeShape, readQueryShapes, uncoveredShapes } from './queryShapes';

/**
 * Stops the services globalSetup started and removes its scratch directory (databases, logs, the workflow bundle).
 * Before that it checks the query shapes the test files recorded: a filter that no declared index covers fails the
 * run, listing each one.
 */
export default async function globalTeardown(): Promise<void> {
  const state = globalThis as TestStackState;
  await stopServices(state.__patchproofServices ?? []);
  const scratch = state.__patchproofScratch;
  if (!scratch) return;
  const shapes = readQueryShapes(path.join(scratch, 'query-shapes'));
  rmSync(scratch, { recursive: true, force: true });
  const uncovered = uncoveredShapes(shapes, declaredIndexLeads());
  process.stderr.write(`[test-teardown] ${shapes.length} distinct query shapes recorded, ${uncovered.length} without an index\n`);
  if (uncovered.length > 0) {
    throw new Error(
      `queries whose filter no declared index covers (full collection scans):\n${uncovered.map((s) => `  - ${describeShape(s)}`).join('\n')}\n` +
        'Key the lookup by _id or an indexed field, declare the index on the model, or list the scan in ACCEPTED_SCANS with why.',
    );
  }
}

import { rmSync } from 'node:fs';
import path from 'node:path';
import { stopServices, type TestStackState } from './globalSetup';
import { declaredIndexLeads, describeShape, readQueryShapes, uncoveredShapes } from './queryShapes';
import { collectRunSources, HISTORY_DEADLINE_MS } from './runSources';
import { describeFindings, scanForSecrets } from './secretsScan';
import { TEST_ENV } from './testEnv';

/**
 * Scans what the run left behind for secrets and personal data (every log file, every captured process output and
 * every workflow history of the test namespaces, test/support/runSources.ts), then stops the services globalSetup
 * started and removes its scratch directory (databases, logs, the workflow bundle). It also checks the query shapes
 * the test files recorded: a filter that no declared index covers fails the run, listing each one. A secret found
 * anywhere fails the run too, listing where.
 */
export default async function globalTeardown(jestConfig?: unknown): Promise<void> {
  const state = globalThis as TestStackState;
  const scratch = state.__patchproofScratch;
  let scanProblem: string | undefined;
  // Jest passes its configuration; the benches (test/bench/) call this without one and skip the scan: their load
  // leaves thousands of histories, and the test suite is where redaction is proven.
  if (scratch && jestConfig !== undefined) {
    try {
      scanProblem = await scanRun(scratch);
    } catch (err) {
      scanProblem = `the secrets scan could not run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    }
  }
  await stopServices(state.__patchproofServices ?? []);
  if (!scratch) return;
  const shapes = readQueryShapes(path.join(scratch, 'query-shapes'));
  rmSync(scratch, { recursive: true, force: true });
  const uncovered = uncoveredShapes(shapes, declaredIndexLeads());
  process.stderr.write(`[test-teardown] ${shapes.length} distinct query shapes recorded, ${uncovered.length} without an index\n`);
  const problems: string[] = [];
  if (uncovered.length > 0) {
    problems.push(
      `queries whose filter no declared index covers (full collection scans):\n${uncovered.map((s) => `  - ${describeShape(s)}`).join('\n')}\n` +
        'Key the lookup by _id or an indexed field, declare the index on the model, or list the scan in ACCEPTED_SCANS with why.',
    );
  }
  if (scanProblem) problems.push(scanProblem);
  if (problems.length > 0) throw new Error(problems.join('\n\n'));
}

/** The scan's failure message, or undefined when nothing was found. */
async function scanRun(scratch: string): Promise<string | undefined> {
  const started = Date.now();
  const address = process.env[TEST_ENV.temporalAddress];
  const run = await collectRunSources({ scratch, ...(address && { temporalAddress: address }) });
  const findings = scanForSecrets(run.sources, { literals: run.literals, privateKeys: run.privateKeys });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const perNamespace = run.namespaces.map((n) => `${n.namespace} ${n.histories} in ${(n.ms / 1000).toFixed(1)} s`).join(', ');
  process.stderr.write(
    `[test-teardown] secrets scan: ${run.files} files (${(run.bytes / 1e6).toFixed(1)} MB), ${run.histories} workflow histories ` +
      `(${perNamespace}), ${Object.keys(run.literals).length} configured secrets, ${run.privateKeys.length} private keys; ${findings.length} findings in ${seconds} s\n`,
  );
  const problems: string[] = [];
  if (findings.length > 0) {
    problems.push(
      `secrets or personal data in what the run left behind (logs, process output, workflow histories):\n${describeFindings(findings)}\n` +
        'Redact the value where it is logged (src/logging/redact.ts) or keep it out of workflow inputs and results.',
    );
  }
  if (run.unread > 0) {
    problems.push(
      `the secrets scan left ${run.unread} workflow histories unread: reading them took longer than ${HISTORY_DEADLINE_MS / 1000} s`,
    );
  }
  return problems.length > 0 ? problems.join('\n\n') : undefined;
}

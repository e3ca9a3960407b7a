import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/**
 * Prebuilds the workflow bundle for production workers (`npm run build`), so they never run webpack at start and
 * every worker of a release runs byte-identical workflow code.
 */
async function main(): Promise<void> {
  // npm runs scripts from the repo root; the production worker loads dist/workflow-bundle.js.
  const outFile = path.resolve(process.cwd(), 'dist', 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows') });
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, code);
  process.stdout.write(`workflow bundle written to ${path.relative(process.cwd(), outFile)} (${Math.round(code.length / 1024)} KiB)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bundle failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

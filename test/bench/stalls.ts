/**
 * The stall table (docs/OPERATIONS.md, "When a dependency stalls"): on a stack of its own (test/support/stallStack.ts)
 * it freezes Redis, the database (FerretDB) and the Temporal dev server in turn with SIGSTOP for 10 s while a small
 * load (2 loops per route, loopback only) probes GET verify of an unknown uid, POST /v1/patches, POST /api/svd/begin
 * and /ready on the API (its own process), then SIGCONTs it. Prints, per frozen service and route, the statuses seen,
 * the slowest answer, and how long after SIGCONT the route answered normally again; then the registrations lost or
 * duplicated (retried with their Idempotency-Key until accepted) and the API's RSS before and after each stall, beside
 * a control run of the same load with nothing frozen.
 * Run: npx tsx test/bench/stalls.ts [--seconds 10]
 */
import { parseArgs } from 'node:util';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import {
  PROBE_NAMES,
  STALLED_SERVICES,
  probe,
  registrationOutcome,
  runStall,
  stallTable,
  startStallStack,
  type StallRun,
} from '../support/stallStack';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' } } });
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const stack = await startStallStack();
  const runs: StallRun[] = [];
  try {
    for (let i = 0; i < 5; i++) for (const name of PROBE_NAMES) await probe(stack, name, name === 'register' ? `WARM-${i}` : undefined);
    // The control run: the same load with nothing frozen, so the RSS a stall adds is told from what the load adds.
    for (const service of ['none', ...STALLED_SERVICES] as const) {
      const run = await runStall(stack, service, { stallMs: Number(values.seconds) * 1000, concurrency: 2 });
      if (service !== 'none') runs.push(run);
      const outcome = await registrationOutcome(stack, run.registrations);
      process.stdout.write(
        `${service}: ${run.registrations.length} registrations, ${outcome.lost.length} lost, ${outcome.duplicated.length} duplicated; ` +
          `API RSS ${run.rssBeforeMiB.toFixed(0)} MiB before, ${run.rssAfterMiB.toFixed(0)} MiB after\n`,
      );
    }
    process.stdout.write(`\n${stallTable(runs)}\n`);
  } finally {
    await stack.close();
    await globalTeardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

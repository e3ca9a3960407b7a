/**
 * The restart table (docs/OPERATIONS.md, "When a dependency restarts"): on a stack of its own
 * (test/support/stallStack.ts, restartable: Temporal on a SQLite file, the database on its own data directory) with
 * the API and the main worker as their own processes, it restarts the Temporal dev server, the database (FerretDB and
 * its PostgreSQL) and Redis in turn, each while `registrations` registrations are in flight (stopped once a third are
 * accepted, down for `seconds`, started again on the same port with the same data). Prints, per restarted service:
 * downtime, registrations accepted/anchored/lost/duplicated, what POST /v1/patches, /ready and an SVD login answered
 * while it was down, how long after it came back /ready, an SVD login and a new registration all succeeded, whether
 * the API and worker are the processes that ran before (no manual restart) and the UTXOs left reserved.
 * Run: npm run restarts [-- --registrations 100 --seconds 5 --only temporal,mongo,redis]
 */
import { parseArgs } from 'node:util';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { RESTARTED_SERVICES, restartTable, runRestart, startRestartStack, type RestartRun } from '../support/restarts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      registrations: { type: 'string', default: '100' },
      seconds: { type: 'string', default: '5' },
      only: { type: 'string' },
    },
  });
  const services = values.only ? RESTARTED_SERVICES.filter((s) => values.only!.split(',').includes(s)) : RESTARTED_SERVICES;
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const setup = await startRestartStack();
  const runs: RestartRun[] = [];
  let failed = false;
  try {
    for (const service of services) {
      const run = await runRestart(setup, service, {
        registrations: Number(values.registrations),
        downtimeMs: Number(values.seconds) * 1000,
        anchorTimeoutMs: 180_000,
      });
      runs.push(run);
      const problems = [
        ...run.lost.map((uid) => `lost ${uid}`),
        ...run.duplicated.map((uid) => `duplicated ${uid}`),
        ...(run.chain.committed !== run.chain.anchored
          ? [`chain commits to ${run.chain.committed} records, ${run.chain.anchored} anchored`]
          : []),
        ...(!run.processes.api || !run.processes.worker ? ['a process exited'] : []),
      ];
      failed ||= problems.length > 0;
      process.stdout.write(`${service}: ${problems.length === 0 ? 'ok' : problems.join('; ')}\n`);
      for (const line of run.noAnswer) process.stdout.write(`  no answer: ${line}\n`);
    }
    process.stdout.write(`\n${restartTable(runs)}\n`);
  } finally {
    if (failed)
      process.stderr.write(
        `--- worker output (last lines)\n${setup.stack.worker?.output() ?? ''}\n--- API output\n${setup.stack.apiOutput()}\n`,
      );
    await setup.stack.close();
    await globalTeardown();
  }
  if (failed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

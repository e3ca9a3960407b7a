/**
 * The operator CLI. Every command that changes or inspects state runs a workflow underneath, so what it did is in
 * Temporal's history for auditors. Exit codes: 0 success, 1 the check ran and found a problem, 2 usage error,
 * 3 a dependency (Temporal, the API) could not be reached, 4 invalid configuration, 5 a check passed as far as it
 * could go but not every part could be checked (verify-proof without headers).
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig, type AppConfig } from '../../src/config';
import { ensureIndexes } from '../../src/db/indexes';
import { registerModels } from '../../src/db/models';
import { connectMongo } from '../../src/db/mongo';
import { redactString } from '../../src/logging/redact';
import { getSystemCheckStatus, startSystemCheck } from '../../src/system/launch';
import type { SystemCheckReport } from '../../workflows/system/shared';
import { CliFailure, connectTemporal, EXIT, output } from './common';
import { registerAuditCommand } from './audit';
import { registerBackupCommands } from './backup';
import { registerProofCommands } from './proofs';
import { registerPoolCommands } from './pool';
import { registerKeysCommands } from './keys';
import { registerApiKeyCommands } from './apiKeys';
import { registerWebhookCommands } from './webhooks';
import { registerBatchCommand } from './registerBatch';
import { registerRotateCommands } from './rotate';
import { registerHistoryCommands } from './history';
import { registerTagCommands } from './tags';
import { registerDoctorCommand } from './doctor';

export { EXIT } from './common';

async function systemCheck(config: AppConfig, options: { checkId?: string; wait: boolean; json: boolean }): Promise<number> {
  const out = output(options.json);
  const client = await connectTemporal(config);
  try {
    const started = await startSystemCheck(client, { ...(options.checkId && { checkId: options.checkId }), requestedBy: 'cli' });
    out.progress(`${started.alreadyStarted ? 'attached to' : 'started'} workflow ${started.workflowId}`);
    if (!options.wait) {
      out.result(started, `check ${started.checkId} started; follow it with: temporal workflow show --workflow-id ${started.workflowId}`);
      return EXIT.ok;
    }
    const deadline = Date.now() + 90_000;
    for (;;) {
      const status = await getSystemCheckStatus(client, started.checkId);
      if (status.state === 'completed') {
        out.result(status.report, formatReport(status.report));
        return status.report.status === 'ok' ? EXIT.ok : EXIT.problem;
      }
      if (status.state === 'failed' || status.state === 'not_found') {
        throw new CliFailure(
          `check ${started.checkId} ended without a report (${status.state === 'failed' ? status.reason : 'not found'})`,
          EXIT.problem,
        );
      }
      out.progress(`  ${status.progress.step}: ${status.progress.probes.length}/2 probes answered`);
      if (Date.now() > deadline) throw new CliFailure('timed out waiting for the check', EXIT.unreachable);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await client.connection.close();
  }
}

function formatReport(report: SystemCheckReport): string {
  const lines = [`system check ${report.checkId}: ${report.status.toUpperCase()}`];
  for (const probe of report.probes) {
    lines.push(`  ${probe.dependency.padEnd(6)} ${probe.ok ? `ok (${probe.latencyMs} ms)` : `DOWN: ${probe.error ?? 'no answer'}`}`);
  }
  return lines.join('\n');
}

async function health(config: AppConfig, options: { apiUrl?: string; json: boolean }): Promise<number> {
  const out = output(options.json);
  const base = (options.apiUrl ?? `http://127.0.0.1:${config.http.port}`).replace(/\/+$/, '');
  let response: Response;
  try {
    response = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new CliFailure(`cannot reach the API at ${base}: ${(err as Error).message}`, EXIT.unreachable);
  }
  const body = (await response.json()) as { status: string; checks: Record<string, { status: string; latencyMs: number; error?: string }> };
  const human = [
    `API ${base}: ${body.status}`,
    ...Object.entries(body.checks).map(([name, c]) => `  ${name.padEnd(8)} ${c.status} (${c.latencyMs} ms)${c.error ? ` ${c.error}` : ''}`),
  ];
  out.result(body, human.join('\n'));
  return body.status === 'ready' ? EXIT.ok : EXIT.problem;
}

export function buildProgram(run: (code: number) => void): Command {
  const program = new Command('patchproof')
    .description('PatchProof operator CLI: runs workflows on Temporal and reports what they did.')
    .option('--json', 'print results as JSON on stdout (progress stays on stderr)', false)
    .exitOverride()
    .showHelpAfterError();

  const withConfig = async (fn: (config: AppConfig) => Promise<number>) => {
    let config: AppConfig;
    try {
      config = loadConfig();
    } catch (err) {
      if (err instanceof ConfigError) throw new CliFailure(err.message, EXIT.config);
      throw err;
    }
    run(await fn(config));
  };

  program
    .command('system-check')
    .description('Run a SystemCheckWorkflow: the worker probes MongoDB and Redis and records a report.')
    .option('--check-id <id>', 'idempotency key: the same id attaches to the same run')
    .option('--no-wait', 'start it and return without waiting for the report')
    .action((options: { checkId?: string; wait: boolean }) =>
      withConfig((config) => systemCheck(config, { ...options, json: program.opts<{ json: boolean }>().json })),
    );

  program
    .command('health')
    .description("Show the API's readiness: MongoDB, Redis and Temporal, each with its own status.")
    .option('--api-url <url>', 'base URL of the API (default: http://127.0.0.1:$PORT)')
    .action((options: { apiUrl?: string }) =>
      withConfig((config) => health(config, { ...options, json: program.opts<{ json: boolean }>().json })),
    );

  program
    .command('ensure-indexes')
    .description('Create every index the models declare (the worker also does this at start); reports what the database cannot build.')
    .action(() =>
      withConfig(async (config) => {
        const out = output(program.opts<{ json: boolean }>().json);
        const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
          throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
        });
        try {
          registerModels(mongo);
          const reports = await ensureIndexes(mongo);
          out.result(
            reports,
            reports.map((r) => `  ${r.model.padEnd(20)} ${r.status}${r.status === 'ok' ? '' : ` (${r.error ?? ''})`}`).join('\n'),
          );
          return EXIT.ok;
        } catch (err) {
          throw new CliFailure((err as Error).message, EXIT.problem);
        } finally {
          await mongo.close();
        }
      }),
    );

  registerProofCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerPoolCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerBackupCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerBatchCommand(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerRotateCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerHistoryCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerKeysCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerApiKeyCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerAuditCommand(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerTagCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerDoctorCommand(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });
  registerWebhookCommands(program, { withConfig, json: () => program.opts<{ json: boolean }>().json });

  return program;
}

/** Runs the CLI with these arguments and exits with its code; the npm bin (ops/cli/bin.cjs) calls this. */
export function runCli(argv: string[]): void {
  const program = buildProgram((code) => process.exit(code));
  program.parseAsync(argv).catch((err: unknown) => {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
    if (err instanceof CliFailure) {
      process.stderr.write(`patchproof: ${redactString(err.message)}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`patchproof: ${redactString(err instanceof Error ? err.message : String(err))}\n`);
    process.exit(EXIT.problem);
  });
}

if (require.main === module) runCli(process.argv);

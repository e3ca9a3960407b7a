import { readFileSync, writeFileSync } from 'node:fs';
import { Worker } from '@temporalio/worker';
import type { Command } from 'commander';
import type { AppConfig } from '../../src/config';
import { decodeHistory } from '../../src/history/encoding';
import { historyArchiveInput, startHistoryArchive } from '../../src/history/launch';
import { archivedHistoryModel, type ArchivedHistoryDocument } from '../../src/history/models';
import type { HistoryArchiveReport } from '../../workflows/history/shared';
import { CliFailure, connectTemporal, EXIT, output, type CliContext, withMongo } from './common';

type ArchivedRun = Omit<ArchivedHistoryDocument, 'history'>;

/** The archived runs of a workflow id, newest first (an indexed equality lookup). */
async function archivedRuns(config: AppConfig, workflowId: string): Promise<ArchivedRun[]> {
  return withMongo(config, async (mongo) => {
    const runs = await archivedHistoryModel(mongo).find({ workflowId }, { history: 0 }).lean();
    return runs.sort((a, b) => b.closeTime.getTime() - a.closeTime.getTime());
  });
}

/**
 * `patchproof history …`: the archive of closed workflow histories in MongoDB (`workflow_histories`), which outlives
 * the namespace retention. `export` prints one run's history in the `temporal workflow show --output json` form,
 * which Worker.runReplayHistory accepts as is.
 */
export function registerHistoryCommands(program: Command, context: CliContext): void {
  const history = program.command('history').description('Archived workflow histories (kept in MongoDB after Temporal retention).');

  history
    .command('archive')
    .description('Archive closed workflow histories now (what the history-archive schedule does), and wait for it.')
    .action(() =>
      context.withConfig(async (config) => {
        const out = output(context.json());
        const client = await connectTemporal(config);
        try {
          const started = await startHistoryArchive(client, historyArchiveInput(config.historyArchive, 'cli'));
          out.progress(`${started.alreadyStarted ? 'attached to' : 'started'} workflow ${started.workflowId} (run ${started.runId})`);
          const report = (await client.workflow.getHandle(started.workflowId, started.runId).result()) as HistoryArchiveReport;
          out.result(
            report,
            `archived ${report.archived} histories (${report.alreadyArchived} already there) in ${report.batches} batches; ` +
              `everything closed before ${report.closedBefore} is archived${report.more ? '; more left for the next run' : ''}`,
          );
          return EXIT.ok;
        } finally {
          await client.connection.close();
        }
      }),
    );

  history
    .command('show')
    .argument('<workflowId>', 'the workflow id, e.g. registration-PP-0001')
    .description('List the archived runs of a workflow id: type, status, times, events, size and SHA-256.')
    .action((workflowId: string) =>
      context.withConfig(async (config) => {
        const runs = await archivedRuns(config, workflowId);
        if (runs.length === 0) throw new CliFailure(`no archived history for workflow ${workflowId}`, EXIT.problem);
        const lines = runs.map(
          (r) =>
            `${r.runId}  ${r.workflowType}  ${r.status}  started ${r.startTime.toISOString()}  closed ${r.closeTime.toISOString()}  ` +
            `${r.historyLength} events  ${r.jsonBytes} bytes (${r.encoding})  sha256 ${r.sha256}`,
        );
        output(context.json()).result(runs, lines.join('\n'));
        return EXIT.ok;
      }),
    );

  history
    .command('replay')
    .argument('<file>', 'a history JSON file (from `history export` or `temporal workflow show --output json`)')
    .option('--bundle <path>', 'a prebuilt workflow bundle (workflow-bundle.js) instead of bundling this checkout’s workflows')
    .description('Replay a history against the workflow code: exit 0 when every recorded decision is what the code decides.')
    .action(async (file: string, options: { bundle?: string }) => {
      const history = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      try {
        await Worker.runReplayHistory(
          options.bundle ? { workflowBundle: { codePath: options.bundle } } : { workflowsPath: require.resolve('../../workflows') },
          history,
          file,
        );
      } catch (err) {
        throw new CliFailure(`replay of ${file} failed: ${(err as Error).message}`, EXIT.problem);
      }
      output(context.json()).result({ file, replayed: true }, `replay ok: ${file} matches the current workflow code`);
    });

  history
    .command('export')
    .argument('<workflowId>', 'the workflow id, e.g. registration-PP-0001')
    .option('--run-id <runId>', 'which run (default: the latest archived one)')
    .option('--out <file>', 'write the history JSON to this file instead of stdout')
    .description('Print one archived run’s history as `temporal workflow show --output json` does (replayable).')
    .action((workflowId: string, options: { runId?: string; out?: string }) =>
      context.withConfig(async (config) => {
        const json = await withMongo(config, async (mongo) => {
          const histories = archivedHistoryModel(mongo);
          const runs = await histories.find({ workflowId }, { history: 0 }).lean();
          const run = options.runId
            ? runs.find((r) => r.runId === options.runId)
            : runs.sort((a, b) => b.closeTime.getTime() - a.closeTime.getTime())[0];
          if (!run)
            throw new CliFailure(
              `no archived history for workflow ${workflowId}${options.runId ? ` run ${options.runId}` : ''}`,
              EXIT.problem,
            );
          const doc = await histories.findById(run._id).lean();
          return decodeHistory(doc!);
        });
        if (options.out) {
          writeFileSync(options.out, json);
          process.stderr.write(`wrote ${options.out}\n`);
        } else {
          process.stdout.write(json.endsWith('\n') ? json : `${json}\n`);
        }
        return EXIT.ok;
      }),
    );
}

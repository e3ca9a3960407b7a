import { userInfo } from 'node:os';
import type { Client } from '@temporalio/client';
import { Option, type Command } from 'commander';
import { isValidP2pkhAddress } from '../../src/chain/addresses';
import { chainClientsFromConfig } from '../../src/chain/clients';
import type { AppConfig } from '../../src/config';
import { connectMongo } from '../../src/db/mongo';
import { createPoolHealth, type PoolHealth } from '../../src/pool/health';
import { keyringFromConfig } from '../../src/rotation/keyring';
import { startReconcile, startSweep, startSync, startTopUp, waitForPoolOperation, type PoolOperationResult } from '../../src/pool/launch';
import {
  clearPoolSetting,
  InvalidSettingError,
  OVERRIDABLE_POOL_SETTINGS,
  readPoolSettings,
  writePoolSetting,
} from '../../src/pool/settings';
import type { LaunchResult } from '../../src/temporal/launch';
import { MANAGED_SCHEDULE_IDS } from '../../workers/schedules';
import type { ReconcileReport, SweepReport, SyncReport, TopUpReport } from '../../workflows/pool/shared';
import { CliFailure, connectTemporal, EXIT, output, webUiLink, type Output, type CliContext } from './common';

/**
 * Starts a pool workflow (or attaches to the run holding its id), prints its id and Web UI link, follows its
 * progress and prints its report. Exit 0 when it completed, 1 when it failed.
 */
async function runOperation(
  config: AppConfig,
  out: Output,
  label: string,
  launch: (client: Client) => Promise<LaunchResult>,
  options: { wait: boolean },
  describe: (result: PoolOperationResult) => string,
): Promise<number> {
  const client = await connectTemporal(config);
  try {
    const started = await launch(client);
    out.progress(
      started.alreadyStarted
        ? `a ${label} is already running as ${started.workflowId}; attaching to it (run ${started.runId}) instead of starting another`
        : `started ${label}: workflow ${started.workflowId} (run ${started.runId})`,
    );
    const link = webUiLink(config, started.workflowId, started.runId);
    if (link) out.progress(`  Web UI: ${link}`);
    if (!options.wait) {
      out.result(
        { ...started },
        `follow it with: temporal workflow describe --workflow-id ${started.workflowId} --run-id ${started.runId}`,
      );
      return EXIT.ok;
    }
    let lastStep = '';
    const done = await waitForPoolOperation(client, started.workflowId, started.runId, {
      onProgress: (progress) => {
        const step = progress ? `${progress.step}${progress.attempt > 1 ? ` (round ${progress.attempt})` : ''}` : 'waiting for a worker';
        if (step !== lastStep) out.progress(`  ${step}${progress?.txid ? ` txid ${progress.txid}` : ''}`);
        lastStep = step;
      },
    });
    if (done.state === 'completed') {
      out.result(done.result, describe(done.result));
      return EXIT.ok;
    }
    if (done.state === 'not_found') throw new CliFailure(`${started.workflowId} is gone`, EXIT.problem);
    out.result(done, `${label} ${done.status}: ${done.failureType ? `${done.failureType}: ` : ''}${done.reason}`);
    return EXIT.problem;
  } finally {
    await client.connection.close();
  }
}

function describeTopUp(report: TopUpReport): string {
  const head = `top-up ${report.outcome}${report.reason ? ` (${report.reason})` : ''}: pool ${report.spendableBefore}/${report.target}`;
  if (report.outcome === 'dry_run') {
    return `${head}\n  would split ${report.outputCount} × ${report.outputSats} sat, fee ≈ ${report.estimatedFee} sat, needs ${report.requiredSats} sat; funding holds ${report.fundsAvailableSats} sat (${report.sufficientFunds ? 'enough' : 'NOT enough'})`;
  }
  if (report.transaction) {
    return `${head}\n  split ${report.outputCount} × ${report.outputSats} sat in ${report.transaction.txid} (fee ${report.transaction.fee} sat, ${report.transaction.sizeBytes} bytes, ${report.transaction.confirmations} confirmations)`;
  }
  return head;
}

function describeSweep(report: SweepReport): string {
  const head = `sweep ${report.outcome}${report.reason ? ` (${report.reason})` : ''}: ${report.changeAddress} → ${report.destinationAddress}${report.dustOnly ? ' (dust only)' : ''}`;
  const amounts = `${report.inputCount} inputs, ${report.totalSats} sat, fee ${report.fee} sat, output ${report.outputSats} sat${report.remaining ? `, ${report.remaining} left for the next run` : ''}`;
  if (report.outcome === 'skipped') return `${head}; ${report.eligible} eligible`;
  return `${head}\n  ${report.outcome === 'dry_run' ? 'would sweep' : 'swept'} ${amounts}${report.transaction ? ` in ${report.transaction.txid}` : ''}`;
}

function describeSync(report: SyncReport): string {
  return [
    `sync at height ${report.chainHeight}`,
    ...report.accounts.map(
      (a) =>
        `  ${a.address} (${a.keyIdentifier}): ${a.listed} listed, ${a.added} added, ${a.markedSpent} marked spent, ${a.dropped} retired`,
    ),
  ].join('\n');
}

function describeReconcile(report: ReconcileReport): string {
  return `reconciled ${report.checked} reservations: ${report.released} released, ${report.ownerRunning} still held by running workflows, ${report.spentOnChain} spent on chain, ${report.alreadySettled} already settled`;
}

function describeHealth(health: PoolHealth): string {
  const sats = (n: number) => `${n.toLocaleString('en-US')} sat`;
  const chain =
    'error' in health.chain
      ? `unavailable (${health.chain.error})`
      : `height ${health.chain.height}, ${health.chain.confirmedUtxos}/${health.chain.totalUtxos} confirmed outputs, ${sats(health.chain.confirmedSatoshis)} confirmed`;
  const run = (r: PoolHealth['lastTopUp']) => (r ? `${r.status} ${r.closeTime ?? r.startTime} ${r.workflowId}` : 'never');
  return [
    `pool ${health.funding.address} (${health.funding.keyIdentifier}, ${health.funding.network}, min ${health.funding.minConfirmations} confirmations)`,
    `  available ${health.db.available.count} (${sats(health.db.available.totalSatoshis)}) of target ${health.funding.target}; unconfirmed ${health.db.unconfirmedAvailable}, dust ${health.db.dustAvailable}`,
    `  reserved  ${health.db.reserved.count} (${sats(health.db.reserved.totalSatoshis)}); spent ${health.db.spent.count}`,
    `  change    ${health.change.address} (${health.change.keyIdentifier})`,
    `  chain     ${chain}`,
    `  last top-up ${run(health.lastTopUp)}`,
    `  last sweep  ${run(health.lastSweep)}`,
    ...health.schedules.map((s) => `  schedule ${s.scheduleId}: ${s.paused ? 'PAUSED' : `next ${s.nextRunTimes[0] ?? 'none'}`}`),
  ].join('\n');
}

export function registerPoolCommands(program: Command, context: CliContext): void {
  const utxo = program.command('utxo').description('The UTXO pool: health, sync, top-up, reconcile and run-time settings.');

  utxo
    .command('health')
    .description('Pool snapshot: outputs by status, addresses, chain view, last runs and schedules. Exit 1 when below target.')
    .action(() =>
      context.withConfig(async (config) => {
        const out = output(context.json());
        const client = await connectTemporal(config);
        const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
          throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
        });
        try {
          const health = await createPoolHealth({
            ...chainClientsFromConfig(config),
            mongo,
            temporal: client,
            pool: config.pool,
            keys: keyringFromConfig(config, mongo),
          }).read();
          out.result(health, describeHealth(health));
          return health.db.available.count >= health.funding.target && !('error' in health.chain) ? EXIT.ok : EXIT.problem;
        } finally {
          await Promise.allSettled([mongo.close(), client.connection.close()]);
        }
      }),
    );

  utxo
    .command('sync')
    .description('Run a UtxoSyncWorkflow: import chain outputs, count confirmations, retire spent ones (never revives).')
    .option('--no-wait', 'start it and return without waiting for the report')
    .action((options: { wait: boolean }) =>
      context.withConfig((config) =>
        runOperation(
          config,
          output(context.json()),
          'sync',
          (client) => startSync(client, config.pool.fundingKeyIdentifier, 'cli'),
          options,
          (r) => describeSync(r as SyncReport),
        ),
      ),
    );

  utxo
    .command('top-up')
    .description('Run a UtxoTopUpWorkflow: sync, plan, split a funding output into pool outputs, wait for confirmation.')
    .option('--dry-run', 'plan only: reserve, sign and broadcast nothing')
    .addOption(new Option('--dryRun').hideHelp())
    .option('--no-wait', 'start it and return without waiting for the report')
    .action((options: { dryRun?: boolean; wait: boolean }) =>
      context.withConfig((config) =>
        runOperation(
          config,
          output(context.json()),
          'top-up',
          (client) => startTopUp(client, config.pool.fundingKeyIdentifier, { requestedBy: 'cli', dryRun: options.dryRun === true }),
          options,
          (r) => describeTopUp(r as TopUpReport),
        ),
      ),
    );

  utxo
    .command('reconcile')
    .description('Run the reservation reconciler: release what closed workflows held, after checking the chain.')
    .option('--no-wait', 'start it and return without waiting for the report')
    .action((options: { wait: boolean }) =>
      context.withConfig((config) =>
        runOperation(
          config,
          output(context.json()),
          'reconcile',
          (client) => startReconcile(client),
          options,
          (r) => describeReconcile(r as ReconcileReport),
        ),
      ),
    );

  utxo
    .command('settings')
    .description(
      `Show the pool settings in effect; change one at run time with --set NAME=VALUE (${Object.keys(OVERRIDABLE_POOL_SETTINGS).join(', ')}).`,
    )
    .option('--set <name=value>', 'store an override, read by every later run')
    .option('--clear <name>', 'remove an override, back to the environment value')
    .action((options: { set?: string; clear?: string }) =>
      context.withConfig(async (config) => {
        const out = output(context.json());
        const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
          throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
        });
        try {
          if (options.set) {
            const match = /^([A-Z_]+)=(\S+)$/.exec(options.set);
            if (!match) throw new CliFailure('--set takes NAME=VALUE, e.g. --set UTXO_MIN_POOL=50', EXIT.usage);
            await writePoolSetting(mongo, match[1]!, Number(match[2]), `cli:${userInfo().username}`);
          }
          if (options.clear) await clearPoolSetting(mongo, options.clear);
          const settings = await readPoolSettings(mongo, config.pool.defaults);
          out.result(
            settings,
            Object.entries(settings)
              .map(([k, v]) => `  ${k.padEnd(24)} ${String(v)}`)
              .join('\n'),
          );
          return EXIT.ok;
        } catch (err) {
          if (err instanceof InvalidSettingError) throw new CliFailure(err.message, EXIT.usage);
          throw err;
        } finally {
          await mongo.close();
        }
      }),
    );

  program
    .command('sweep')
    .description('Run a UtxoSweepWorkflow: consolidate a change address into the destination, signed by KMS key id.')
    .requiredOption('--changeAddress <address>', 'the address whose outputs are swept')
    .requiredOption('--changeKeyId <keyIdentifier>', 'KMS key identifier of the change address (never a WIF)')
    .requiredOption('--destinationAddress <address>', 'where the consolidated output goes (usually the funding address)')
    .option('--dry-run', 'plan only: no reservation, no KMS call, no broadcast')
    .addOption(new Option('--dryRun').hideHelp())
    .option('--no-wait', 'start it and return without waiting for the report')
    .action((options: { changeAddress: string; changeKeyId: string; destinationAddress: string; dryRun?: boolean; wait: boolean }) =>
      context.withConfig((config) => {
        for (const [flag, address] of [
          ['--changeAddress', options.changeAddress],
          ['--destinationAddress', options.destinationAddress],
        ] as const) {
          if (!isValidP2pkhAddress(address, config.woc.network)) {
            throw new CliFailure(`${flag}: not a P2PKH address of the ${config.woc.network} network`, EXIT.usage);
          }
        }
        if (!/^[A-Za-z0-9._:-]{1,80}$/.test(options.changeKeyId)) throw new CliFailure('--changeKeyId: not a key identifier', EXIT.usage);
        return runOperation(
          config,
          output(context.json()),
          'sweep',
          (client) =>
            startSweep(client, {
              requestedBy: 'cli',
              changeAddress: options.changeAddress,
              changeKeyId: options.changeKeyId,
              destinationAddress: options.destinationAddress,
              dryRun: options.dryRun === true,
            }),
          options,
          (r) => describeSweep(r as SweepReport),
        );
      }),
    );

  program
    .command('schedules')
    .description('The schedules the worker manages.')
    .command('list')
    .description('List the managed schedules with their next run times (pause/trigger/backfill with `temporal schedule`).')
    .action(() =>
      context.withConfig(async (config) => {
        const out = output(context.json());
        const client = await connectTemporal(config);
        try {
          const rows = [];
          for await (const schedule of client.schedule.list()) {
            rows.push({
              scheduleId: schedule.scheduleId,
              managed: (MANAGED_SCHEDULE_IDS as readonly string[]).includes(schedule.scheduleId),
              paused: schedule.state.paused,
              nextRunTimes: schedule.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
              workflowType: schedule.action?.type === 'startWorkflow' ? schedule.action.workflowType : undefined,
            });
          }
          rows.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
          out.result(
            rows,
            rows.length === 0
              ? 'no schedules'
              : rows
                  .map((r) => `${r.scheduleId.padEnd(28)} ${r.paused ? 'PAUSED' : 'active'}  next ${r.nextRunTimes[0] ?? '-'}`)
                  .join('\n'),
          );
          return EXIT.ok;
        } finally {
          await client.connection.close();
        }
      }),
    );
}

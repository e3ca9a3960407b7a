import type { Command } from 'commander';
import { runAudit, type AuditOptions, type AuditReport } from '../../src/audit/audit';
import { chainClientsFromConfig } from '../../src/chain/clients';
import type { AppConfig } from '../../src/config';
import { connectMongo } from '../../src/db/mongo';
import { registerModels } from '../../src/db/models';
import { keyringFromConfig } from '../../src/rotation/keyring';
import { CliFailure, connectTemporal, EXIT, output, type CliContext } from './common';

interface AuditFlags {
  from?: string;
  to?: string;
  stuckAfter: string;
  unprovenAfter?: string;
  concurrency: string;
  workflows: boolean;
  maxFindings: string;
}

const DAY_MS = 24 * 3600_000;
/** Expected block interval: the default wait for a proof is this per required confirmation, plus one block. */
const BLOCK_INTERVAL_MINUTES = 10;

function parseTime(name: string, value: string): Date {
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new CliFailure(`${name}: an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T12:00:00Z`, EXIT.usage);
  return new Date(time);
}

function parseWhole(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliFailure(`${name}: a whole number ≥ ${min}`, EXIT.usage);
  return n;
}

export function auditOptions(config: Pick<AppConfig, 'anchoring'>, flags: AuditFlags, now = new Date()): AuditOptions {
  const to = flags.to === undefined ? now : parseTime('--to', flags.to);
  const from = flags.from === undefined ? new Date(to.getTime() - DAY_MS) : parseTime('--from', flags.from);
  if (from > to) throw new CliFailure('--from is after --to', EXIT.usage);
  const unprovenMinutes =
    flags.unprovenAfter === undefined
      ? (config.anchoring.confirmations + 1) * BLOCK_INTERVAL_MINUTES
      : parseWhole('--unproven-after', flags.unprovenAfter, 0);
  return {
    from,
    to,
    stuckAfterMs: parseWhole('--stuck-after', flags.stuckAfter, 0) * 60_000,
    unprovenAfterMs: unprovenMinutes * 60_000,
    concurrency: parseWhole('--concurrency', flags.concurrency, 1),
    workflows: flags.workflows,
    maxFindings: parseWhole('--max-findings', flags.maxFindings, 0),
  };
}

export function describeAudit(report: AuditReport): string {
  const { checked, outcomes } = report;
  const records = checked.registrations + checked.transfers;
  const lines = [
    `audit of records created ${report.window.from} to ${report.window.to} (network ${report.network})`,
    report.chain
      ? `  local chain tip: height ${report.chain.tipHeight} (${report.chain.tipHash}), synced ${report.chain.syncedAt}`
      : '  local chain tip: none (the chain follower has not synced)',
    `  checked: ${checked.registrations} registrations, ${checked.transfers} transfers, ${checked.anchorTxs} anchor txs, ${checked.workflowRequests} workflow requests`,
    `  verified ${outcomes.verified}, awaiting proof ${outcomes.awaitingProof}, in progress ${outcomes.inProgress}, failed ${outcomes.failed}`,
    `  throughput: ${report.recordsPerSecond} records/s (${records} records in ${(report.durationMs / 1000).toFixed(1)} s)`,
  ];
  if (report.clean) return [...lines, 'CLEAN: no discrepancies'].join('\n');
  const total = Object.values(report.findingCounts).reduce((a, b) => a + b, 0);
  lines.push(`DISCREPANCIES: ${total}`);
  for (const [code, count] of Object.entries(report.findingCounts)) lines.push(`  ${code.padEnd(26)} ${count}`);
  for (const f of report.findings)
    lines.push(`  ${f.code} ${f.subject.kind} ${f.subject.id}${f.txid ? ` (tx ${f.txid})` : ''}: ${f.detail}`);
  if (report.findingsTruncated) lines.push(`  … ${total - report.findings.length} more (raise --max-findings to list them)`);
  return lines.join('\n');
}

/** `patchproof audit`: reconciles MongoDB, Temporal and the local chain for a window (docs/OPERATIONS.md, "Auditing"). */
export function registerAuditCommand(program: Command, context: CliContext): void {
  program
    .command('audit')
    .description(
      'Reconcile records created in [--from, --to] with their workflows and the local chain: proofs against stored headers, workflow results, unproven txs. Exit 0 clean, 1 discrepancies, 2–4 could not run.',
    )
    .option('--from <time>', 'start of the window (ISO 8601); default: 24 hours before --to')
    .option('--to <time>', 'end of the window (ISO 8601); default: now')
    .option('--stuck-after <minutes>', 'a record pending or anchoring for longer is a discrepancy', '60')
    .option('--unproven-after <minutes>', 'an anchor tx unproven for longer is a discrepancy; default: 10 × (ANCHOR_CONFIRMATIONS + 1)')
    .option('--concurrency <n>', 'records checked at once', '16')
    .option('--no-workflows', 'leave Temporal out (windows older than the namespace retention)')
    .option('--max-findings <n>', 'findings listed (all are counted)', '1000')
    .action((flags: AuditFlags) =>
      context.withConfig(async (config) => {
        const options = auditOptions(config, flags);
        const out = output(context.json());
        const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
          throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
        });
        try {
          registerModels(mongo);
          // Temporal is left alone with --no-workflows: an audit of an old window then runs while Temporal is down.
          const temporal = options.workflows ? await connectTemporal(config) : null;
          try {
            let last = Date.now();
            const report = await runAudit(
              {
                mongo,
                temporal,
                network: config.woc.network,
                requiredConfirmations: config.anchoring.confirmations,
                keys: keyringFromConfig(config, mongo),
                kms: chainClientsFromConfig(config).kms,
              },
              options,
              (records) => {
                if (Date.now() - last < 2_000) return;
                last = Date.now();
                out.progress(`  ${records} records checked`);
              },
            ).catch((err: unknown) => {
              throw new CliFailure(`the audit could not finish: ${(err as Error).message}`, EXIT.unreachable);
            });
            out.result(report, describeAudit(report));
            return report.clean ? EXIT.ok : EXIT.problem;
          } finally {
            await temporal?.connection.close();
          }
        } finally {
          await mongo.close();
        }
      }),
    );
}

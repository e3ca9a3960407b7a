import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { chainClientsFromConfig } from '../../src/chain/clients';
import { connectMongo } from '../../src/db/mongo';
import { loadKeyDirectory, type IssuerKeyDirectory } from '../../src/issuerKeys/directory';
import { issuerKeyRevocationInput, revocationTimeProblem, revokeIssuerKey } from '../../src/issuerKeys/launch';
import { KEY_IDENTIFIER_PATTERN } from '../../src/rotation/ids';
import { keyringFromConfig } from '../../src/rotation/keyring';
import { CliFailure, connectTemporal, EXIT, output, webUiLink, type CliContext } from './common';

/** How long `keys revoke` follows the workflow: it waits out the key settings cache (2 × KEY_SETTINGS_CACHE_MS + 1 s). */
const REVOKE_WAIT_MS = 120_000;

export function describeDirectory(directory: IssuerKeyDirectory): string {
  return directory.keys
    .map((k) =>
      [
        `${k.kid.padEnd(20)} ${k.status.toUpperCase().padEnd(8)} ${k.publicKey}`,
        `    valid from ${k.validFrom ?? '(before the key settings)'} until ${k.validUntil ?? '(now)'}`,
        ...(k.revokedAt ? [`    revoked at ${k.revokedAt}: ${k.revocationReason ?? ''}`] : []),
      ].join('\n'),
    )
    .join('\n');
}

/** `patchproof keys …`: the issuer key directory, and revoking an issuer key as a workflow (docs/OPERATIONS.md). */
export function registerKeysCommands(program: Command, context: CliContext): void {
  const keys = program.command('keys').description('Issuer keys: the key directory verifiers resolve keys through, and revocation.');

  keys
    .command('list')
    .description('The issuer key directory as GET /.well-known/patchproof-keys.json publishes it (read from MongoDB and the KMS).')
    .action(() =>
      context.withConfig(async (config) => {
        const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
          throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
        });
        try {
          const directory = await loadKeyDirectory({
            keys: keyringFromConfig(config, mongo),
            kms: chainClientsFromConfig(config).kms,
          }).catch((err: unknown) => {
            throw new CliFailure(`cannot read the key directory: ${(err as Error).message}`, EXIT.unreachable);
          });
          output(context.json()).result(directory, describeDirectory(directory));
          return EXIT.ok;
        } finally {
          await mongo.close();
        }
      }),
    );

  keys
    .command('revoke')
    .description(
      'Revoke an issuer key (IssuerKeyRevocationWorkflow): records it signed from --revoked-at on verify as revoked-key; earlier ones stay authentic.',
    )
    .argument('<kid>', 'the key identifier the directory lists (patchproof keys list)')
    .requiredOption('--reason <text>', 'why (published in the directory and kept in the audit trail; no personal data)')
    .option('--revoked-at <time>', 'the earliest time the key may have been exposed (ISO 8601); default: now')
    .option('--force', 'revoke even the key that signs now (every new record then verifies as revoked-key until a rotation)', false)
    .action((kid: string, options: { reason: string; revokedAt?: string; force: boolean }) =>
      context.withConfig(async (config) => {
        if (!KEY_IDENTIFIER_PATTERN.test(kid)) throw new CliFailure('<kid>: a key identifier, a name optionally @<version>', EXIT.usage);
        const reason = options.reason.trim();
        if (reason.length < 1 || reason.length > 200) throw new CliFailure('--reason: 1–200 characters', EXIT.usage);
        const timeProblem = options.revokedAt === undefined ? null : revocationTimeProblem(options.revokedAt);
        if (timeProblem) throw new CliFailure(`--revoked-at: ${timeProblem}`, EXIT.usage);
        const input = issuerKeyRevocationInput(config, {
          kid,
          reason,
          requestedBy: `cli:${userInfo().username}`,
          trigger: 'cli',
          force: options.force,
          ...(options.revokedAt !== undefined && { revokedAt: options.revokedAt }),
        });
        const out = output(context.json());
        const client = await connectTemporal(config);
        try {
          const { started, status } = await revokeIssuerKey(client, input, { waitMs: REVOKE_WAIT_MS });
          const link = webUiLink(config, started.workflowId, started.runId);
          out.progress(
            `${started.alreadyStarted ? 'attached to the revocation already running' : 'started'}: workflow ${started.workflowId}`,
          );
          if (status.state === 'failed') {
            out.result({ ...status, refused: true }, `refused: ${status.reason}${link ? `\n  Web UI: ${link}` : ''}`);
            return EXIT.problem;
          }
          if (status.state !== 'completed')
            throw new CliFailure(`${started.workflowId} is still running; see the Web UI`, EXIT.unreachable);
          const report = status.status;
          out.result(
            { ...report, workflowId: status.workflowId, runId: status.runId },
            [
              `${report.kid} ${report.changed ? 'REVOKED' : 'already revoked'} from ${report.revokedAt}: ${report.reason}`,
              `  public key ${report.publicKey}; workflow ${status.workflowId} (run ${status.runId})`,
              ...(report.signingKeyRevoked
                ? ['  WARNING: this key signs new records; they verify as revoked-key until you rotate the issuer key']
                : []),
              ...(link ? [`  Web UI: ${link}`] : []),
            ].join('\n'),
          );
          return EXIT.ok;
        } finally {
          await client.connection.close();
        }
      }),
    );
}

import { userInfo } from 'node:os';
import { Option, type Command } from 'commander';
import type { AppConfig } from '../../src/config';
import { connectMongo } from '../../src/db/mongo';
import { DomainError } from '../../src/errors';
import { isKmsKeyPurpose, JWT_KID_PATTERN, KEY_IDENTIFIER_PATTERN, KMS_KEY_PURPOSES, type KmsKeyPurpose } from '../../src/rotation/ids';
import {
  getJwtRotationStatus,
  getKmsRotationStatus,
  jwtRotationInput,
  kmsRotationInput,
  signalKmsRotation,
  startJwtRotation,
  startKmsRotation,
  type RotationStatus,
} from '../../src/rotation/launch';
import { keySettingsView, type KeySettingsEntry } from '../../src/rotation/view';
import type { LaunchResult } from '../../src/temporal/launch';
import type { JwtRotationStatus, KmsRotationStatus } from '../../workflows/rotation/shared';
import { CliFailure, connectTemporal, EXIT, output, webUiLink, type Output, type CliContext } from './common';

const operator = () => `cli:${userInfo().username}`;

function checkedPurpose(value: string): KmsKeyPurpose {
  if (!isKmsKeyPurpose(value)) throw new CliFailure(`--purpose must be one of ${KMS_KEY_PURPOSES.join(', ')}`, EXIT.usage);
  return value;
}

/** Prints the started run (or the one already running, which refuses a second rotation: exit 1). */
function reportStart(config: AppConfig, out: Output, label: string, started: LaunchResult): number {
  const link = webUiLink(config, started.workflowId, started.runId);
  if (started.alreadyStarted) {
    out.result(
      { ...started, refused: true },
      `refused: a ${label} rotation is already running as ${started.workflowId} (run ${started.runId}); approve, cancel or wait for it first${link ? `\n  Web UI: ${link}` : ''}`,
    );
    return EXIT.problem;
  }
  out.result(
    started,
    [
      `started ${label} rotation: workflow ${started.workflowId} (run ${started.runId})`,
      ...(link ? [`  Web UI: ${link}`] : []),
      `  follow it with: patchproof rotate status --purpose ${label}`,
    ].join('\n'),
  );
  return EXIT.ok;
}

function describeKms(status: RotationStatus<KmsRotationStatus>): string {
  if (status.state === 'not_found') return `  never rotated`;
  if (status.state === 'failed')
    return `  last rotation FAILED (${status.runId}): ${status.failureType ? `${status.failureType}: ` : ''}${status.reason}`;
  const s = status.status;
  if (!s) return `  ${status.state}: waiting for a worker`;
  const lines = [
    `  ${status.state === 'running' ? 'RUNNING' : 'done'} (${status.runId}): step ${s.step}, requested by ${s.requestedBy} at ${s.startedAt}`,
  ];
  if (s.oldKey && s.newKey)
    lines.push(
      `    ${s.oldKey.keyIdentifier} → ${s.newKey.keyIdentifier}${s.newKey.address ? ` (${s.oldKey.address} → ${s.newKey.address})` : ''}`,
    );
  if (s.autoApproveAt && !s.approvedAt) lines.push(`    approves itself at ${s.autoApproveAt} unless approved or cancelled first`);
  if (s.approvedAt) lines.push(`    approved by ${s.approvedBy} at ${s.approvedAt}`);
  if (s.cancelledAt) lines.push(`    cancelled by ${s.cancelledBy} at ${s.cancelledAt}`);
  if (s.cutoverAt) lines.push(`    cut over at ${s.cutoverAt}; grace period ends ${s.graceEndsAt ?? '(after the funds moved)'}`);
  for (const sweep of s.sweeps)
    lines.push(
      `    sweep ${sweep.outcome}: ${sweep.inputCount} outputs, ${sweep.outputSats} sat${sweep.transaction ? ` in ${sweep.transaction.txid}` : ''}`,
    );
  if (s.retiredAt) lines.push(`    old key retired at ${s.retiredAt}`);
  for (const refused of s.refused) lines.push(`    refused ${refused.signal} by ${refused.by} at ${refused.at}: ${refused.reason}`);
  return lines.join('\n');
}

function describeJwt(status: RotationStatus<JwtRotationStatus>): string {
  if (status.state === 'not_found') return `  never rotated`;
  if (status.state === 'failed') return `  last rotation FAILED (${status.runId}): ${status.reason}`;
  const s = status.status;
  if (!s) return `  ${status.state}: waiting for a worker`;
  return [
    `  ${status.state === 'running' ? 'RUNNING' : 'done'} (${status.runId}): step ${s.step}, requested by ${s.requestedBy} at ${s.startedAt}`,
    ...(s.newKid ? [`    ${s.previousKid} → ${s.newKid}${s.activatedAt ? `, active since ${s.activatedAt}` : ''}`] : []),
    ...(s.removeAt && !s.removedAt ? [`    ${s.previousKid} verifies until ${s.removeAt}`] : []),
    ...(s.removedAt ? [`    ${s.previousKid} removed at ${s.removedAt}`] : []),
  ].join('\n');
}

function describeKeys(entry: KeySettingsEntry): string {
  return [
    `${entry.purpose}: active ${entry.active} (${entry.source})`,
    ...entry.keys.map((k) => `    ${k.keyIdentifier.padEnd(24)} ${k.state.padEnd(9)} ${k.address ?? k.pubKeyHex ?? ''}`),
  ].join('\n');
}

/** `patchproof rotate …`: KMS and JWT key rotations as workflows (docs/ROTATION.md). */
export function registerRotateCommands(program: Command, context: CliContext): void {
  const rotate = program.command('rotate').description('Key rotation: start, approve, cancel and follow KMS and JWT key rotations.');

  rotate
    .command('kms')
    .description('Start a KmsRotationWorkflow: preflight, stage, approval, cutover, (funding: sweep), grace period, retirement.')
    .requiredOption('--purpose <purpose>', `which key: ${KMS_KEY_PURPOSES.join(', ')}`)
    .requiredOption('--new-key-id <keyIdentifier>', 'KMS key identifier of the new key (name or name@version)')
    .option(
      '--auto-approve-after <duration>',
      'approve by itself after this long (24h, 30m) or off (default: KEY_ROTATION_AUTO_APPROVE_AFTER)',
    )
    .option('--grace-days <days>', 'days the old key keeps verifying after the cutover (default: KEY_ROTATION_GRACE_DAYS)')
    .addOption(new Option('--disable-old-key', 'ask the KMS to disable the old key at retirement').default(undefined))
    .action((options: { purpose: string; newKeyId: string; autoApproveAfter?: string; graceDays?: string; disableOldKey?: boolean }) =>
      context.withConfig(async (config) => {
        const purpose = checkedPurpose(options.purpose);
        if (!KEY_IDENTIFIER_PATTERN.test(options.newKeyId))
          throw new CliFailure('--new-key-id: a key name, optionally @<version>', EXIT.usage);
        if (options.autoApproveAfter !== undefined && !/^(off|\d+(s|m|h|d))$/.test(options.autoApproveAfter)) {
          throw new CliFailure('--auto-approve-after: a duration such as 24h, or off', EXIT.usage);
        }
        const graceDays = options.graceDays === undefined ? undefined : Number(options.graceDays);
        if (graceDays !== undefined && !(graceDays >= 0 && graceDays <= 365)) throw new CliFailure('--grace-days: 0 to 365', EXIT.usage);
        const input = kmsRotationInput(config, {
          purpose,
          newKeyIdentifier: options.newKeyId,
          requestedBy: operator(),
          // The CLI acts with its operator's own credential (OS user); the API with the presented key's id.
          startedByKeyId: operator(),
          trigger: 'cli',
          ...(options.autoApproveAfter !== undefined && {
            autoApproveAfter: options.autoApproveAfter === 'off' ? null : options.autoApproveAfter,
          }),
          ...(graceDays !== undefined && { gracePeriodDays: graceDays }),
          ...(options.disableOldKey !== undefined && { disableOldKeyInKms: options.disableOldKey }),
        });
        const client = await connectTemporal(config);
        try {
          return reportStart(config, output(context.json()), purpose, await startKmsRotation(client, input));
        } finally {
          await client.connection.close();
        }
      }),
    );

  rotate
    .command('jwt')
    .description('Start a JwtKeyRotationWorkflow: new kid, activation, the old kid verifies until its tokens expired, removal.')
    .option('--new-kid <kid>', 'the new kid (default: jwt-<timestamp>); a kid listed in JWT_KEYS keeps its secret there')
    .action((options: { newKid?: string }) =>
      context.withConfig(async (config) => {
        if (options.newKid !== undefined && !JWT_KID_PATTERN.test(options.newKid))
          throw new CliFailure('--new-kid: 1–64 of A–Z a–z 0–9 . _ -', EXIT.usage);
        const input = jwtRotationInput(config, {
          requestedBy: operator(),
          trigger: 'cli',
          ...(options.newKid && { newKid: options.newKid }),
        });
        const client = await connectTemporal(config);
        try {
          return reportStart(config, output(context.json()), 'jwt', await startJwtRotation(client, input));
        } finally {
          await client.connection.close();
        }
      }),
    );

  rotate
    .command('status')
    .description('Active key per purpose, every recorded key and its state, and the latest rotation of each purpose.')
    .option('--purpose <purpose>', `only this purpose: ${[...KMS_KEY_PURPOSES, 'jwt'].join(', ')}`)
    .action((options: { purpose?: string }) =>
      context.withConfig(async (config) => {
        if (options.purpose !== undefined && options.purpose !== 'jwt') checkedPurpose(options.purpose);
        const out = output(context.json());
        const client = await connectTemporal(config);
        const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
          throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
        });
        try {
          const wanted = (p: string) => options.purpose === undefined || options.purpose === p;
          const keys = (await keySettingsView(mongo, config)).filter((k) => wanted(k.purpose));
          const sections: string[] = [];
          const rotations: Record<string, unknown> = {};
          for (const entry of keys) {
            if (entry.purpose === 'jwt') {
              const status = await getJwtRotationStatus(client);
              rotations.jwt = status;
              sections.push(`${describeKeys(entry)}\n${describeJwt(status)}`);
            } else {
              const status = await getKmsRotationStatus(client, entry.purpose);
              rotations[entry.purpose] = status;
              sections.push(`${describeKeys(entry)}\n${describeKms(status)}`);
            }
          }
          out.result({ keys, rotations }, sections.join('\n'));
          const failed = Object.values(rotations).some((r) => (r as { state: string }).state === 'failed');
          return failed ? EXIT.problem : EXIT.ok;
        } finally {
          await Promise.allSettled([mongo.close(), client.connection.close()]);
        }
      }),
    );

  for (const action of ['approve', 'cancel'] as const) {
    rotate
      .command(action)
      .description(
        action === 'approve'
          ? 'Approve the cutover of the running KMS rotation of a purpose; who approved is recorded in its history.'
          : 'Cancel the running KMS rotation of a purpose: before the cutover the staged key is withdrawn; after it, refused.',
      )
      .requiredOption('--purpose <purpose>', `which rotation: ${KMS_KEY_PURPOSES.join(', ')}`)
      .option('--reason <text>', 'why (recorded in the history; no personal data)')
      .action((options: { purpose: string; reason?: string }) =>
        context.withConfig(async (config) => {
          const purpose = checkedPurpose(options.purpose);
          const out = output(context.json());
          const client = await connectTemporal(config);
          try {
            const delivered = await signalKmsRotation(client, purpose, action, {
              by: operator(),
              keyId: operator(),
              ...(options.reason && { reason: options.reason.slice(0, 200) }),
            }).catch((err: unknown) => {
              if (err instanceof DomainError && err.code === 'APPROVER_IS_STARTER') {
                throw new CliFailure(
                  `refused (${err.code}): ${operator()} started this rotation; approve with another operator's credential, e.g. an API key from \`patchproof api-keys create --tenant default --name approver --scopes admin\``,
                  EXIT.problem,
                );
              }
              throw err;
            });
            if (!delivered) throw new CliFailure(`no ${purpose} rotation is running`, EXIT.problem);
            // The signal is handled in the workflow's next task; give it a moment before reporting what it did.
            let status = await getKmsRotationStatus(client, purpose);
            for (let i = 0; i < 20 && status.state === 'running' && !applied(status.status, action); i++) {
              await new Promise((r) => setTimeout(r, 250));
              status = await getKmsRotationStatus(client, purpose);
            }
            const refused = status.state === 'running' && status.status?.refused.some((r) => r.signal === action);
            out.result(status, `${action} ${refused ? 'REFUSED' : 'sent'} to the ${purpose} rotation\n${describeKms(status)}`);
            return refused ? EXIT.problem : EXIT.ok;
          } finally {
            await client.connection.close();
          }
        }),
      );
  }
}

function applied(status: KmsRotationStatus | null, action: 'approve' | 'cancel'): boolean {
  if (!status) return false;
  if (status.refused.some((r) => r.signal === action)) return true;
  return action === 'approve' ? status.approvedAt !== undefined || status.step !== 'awaiting_approval' : status.cancelledAt !== undefined;
}

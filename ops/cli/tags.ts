import { type Command, InvalidArgumentError } from 'commander';
import { chainClientsFromConfig } from '../../src/chain/clients';
import { CliFailure, EXIT, output, type CliContext } from './common';

interface SimulatedTaps {
  uid: string;
  keyVersion: number;
  taps: { url: string; readCounter: number }[];
}

function parseCount(value: string): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > 100) throw new InvalidArgumentError('a number of taps, 1–100');
  return count;
}

/** `patchproof tag simulate <uid>` (dev tag simulator) and `patchproof tag key-version` / `tag rotate-key` (KMS). */
export function registerTagCommands(program: Command, context: CliContext): void {
  const tag = program.command('tag').description('NFC tags (NTAG 424 DNA, SUN): simulated taps and tag master keys');

  tag
    .command('simulate <uid>')
    .description('tap a simulated tag (the dev tag simulator) and print the URLs it writes, one per tap')
    .option('--taps <n>', 'how many taps', parseCount, 1)
    .action((uid: string, options: { taps: number }) =>
      context.withConfig(async (config) => {
        if (!/^[0-9a-fA-F]{14}$/.test(uid)) throw new CliFailure('a tag UID is 7 bytes: 14 hex digits', EXIT.usage);
        const url = `${config.tags.simulatorUrl}/tags/${uid.toUpperCase()}/taps?count=${options.taps}`;
        const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(10_000) }).catch((err: unknown) => {
          throw new CliFailure(
            `cannot reach the tag simulator at ${config.tags.simulatorUrl}: ${(err as Error).message}`,
            EXIT.unreachable,
          );
        });
        if (!res.ok) throw new CliFailure(`tag simulator: HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`, EXIT.problem);
        const body = (await res.json()) as SimulatedTaps;
        output(context.json()).result(body, body.taps.map((t) => t.url).join('\n'));
        return EXIT.ok;
      }),
    );

  tag
    .command('key-version')
    .description("the tag master key's current version in the KMS (new tags are bound under it)")
    .action(() =>
      context.withConfig(async (config) => {
        const version = await chainClientsFromConfig(config).kms.tagKeyVersion(config.tags.keyIdentifier);
        output(context.json()).result(version, `${version.keyIdentifier}@${version.version}`);
        return EXIT.ok;
      }),
    );
}

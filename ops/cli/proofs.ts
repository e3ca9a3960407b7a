import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { chainClientsFromConfig } from '../../src/chain/clients';
import {
  chainServiceHeaderSource,
  HEADERS_FILE_FORMAT,
  headersFileSource,
  HeadersFileError,
  parseHeadersFile,
  type HeaderSource,
} from '../../src/chain/headerSources';
import { blockHeaderModel, type ChainNetwork } from '../../src/chainFollower/models';
import type { AppConfig } from '../../src/config';
import { connectMongo } from '../../src/db/mongo';
import { IssuerKeyDirectorySchema, issuerKeyPolicy, type IssuerKeyDirectory } from '../../src/issuerKeys/directory';
import { KEY_DIRECTORY_PATH } from '../../src/issuerKeys/ids';
import { checkProofBundle, PROOF_BUNDLE_FORMAT_V2, type BundleVerdict, type ProofBundle } from '../../src/registration/proofBundle';
import { CliFailure, EXIT, output, type CliContext } from './common';

/** The issuer key directory from a saved file or its URL: a directory that cannot be read or parsed is a usage error or unreachable. */
async function readKeyDirectory(source: string): Promise<IssuerKeyDirectory> {
  let text: string;
  if (/^https?:\/\//.test(source)) {
    try {
      const response = await fetch(source, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      text = await response.text();
    } catch (err) {
      throw new CliFailure(`cannot fetch the key directory ${source}: ${(err as Error).message}`, EXIT.unreachable);
    }
  } else {
    text = readText(source);
  }
  let parsed;
  try {
    parsed = IssuerKeyDirectorySchema.safeParse(JSON.parse(text));
  } catch {
    throw new CliFailure(`${source} is not JSON`, EXIT.usage);
  }
  if (!parsed.success)
    throw new CliFailure(`${source} is not an issuer key directory (${parsed.error.issues[0]?.message ?? 'bad shape'})`, EXIT.usage);
  return parsed.data;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliFailure(`cannot read ${file}: ${(err as Error).message}`, EXIT.usage);
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readText(file));
  } catch (err) {
    if (err instanceof CliFailure) throw err;
    throw new CliFailure(`${file} is not JSON`, EXIT.usage);
  }
}

interface VerifyOptions {
  keys?: string;
  issuerPubkey?: string;
  confirmations: string;
  headers?: string;
  chainTracker?: string;
}

/** Worst first: a problem anywhere is exit 1; otherwise a check that could not be made anywhere is exit 5. */
function exitCodeOf(verdicts: BundleVerdict[]): number {
  if (verdicts.some((v) => v.status !== 'authentic' && v.status !== 'incomplete')) return EXIT.problem;
  return verdicts.some((v) => v.status === 'incomplete') ? EXIT.incomplete : EXIT.ok;
}

/**
 * `patchproof verify-proof <files…>`: checks proof bundles without our database. Format 2 needs no chain request
 * with `--headers` (or asks the chain service only which block is at each height, with `--chain-tracker woc`); with
 * neither, it checks everything the bundle carries and says that the chain inclusion was not checked (exit 5).
 * Format 1 bundles look each anchor tx up on the configured chain service, as they always did.
 */
async function verifyProofs(config: AppConfig, files: string[], options: VerifyOptions, json: boolean): Promise<number> {
  const out = output(json);
  if (options.headers && options.chainTracker) throw new CliFailure('give --headers or --chain-tracker, not both', EXIT.usage);
  if (options.chainTracker !== undefined && options.chainTracker !== 'woc') {
    throw new CliFailure(`--chain-tracker: only "woc" is known (got ${options.chainTracker})`, EXIT.usage);
  }
  const confirmations = Number(options.confirmations);
  if (!Number.isInteger(confirmations) || confirmations < 0) throw new CliFailure('--confirmations: a whole number', EXIT.usage);
  const bundles = files.map((file) => readJson(file) as ProofBundle);
  const headersFile = options.headers ? readHeadersFile(options.headers) : undefined;
  for (const bundle of bundles) {
    const viaChainService = bundle.format !== PROOF_BUNDLE_FORMAT_V2 || options.chainTracker === 'woc';
    if (viaChainService && bundle.network !== config.woc.network) {
      throw new CliFailure(`the bundle is for the ${bundle.network} network; WOC_NETWORK is ${config.woc.network}`, EXIT.usage);
    }
    if (headersFile?.network && bundle.format === PROOF_BUNDLE_FORMAT_V2 && headersFile.network !== bundle.network) {
      throw new CliFailure(`the bundle is for the ${bundle.network} network; the headers file is for ${headersFile.network}`, EXIT.usage);
    }
  }
  const directorySource = options.keys ?? (config.http.publicBaseUrl && `${config.http.publicBaseUrl}${KEY_DIRECTORY_PATH}`);
  const directory = directorySource ? await readKeyDirectory(directorySource) : undefined;
  // Built only when some bundle needs the chain service, so an offline check makes no request and needs no network.
  let woc: ReturnType<typeof chainClientsFromConfig>['woc'] | undefined;
  const chainService = () => (woc ??= chainClientsFromConfig(config).woc);
  let headers: HeaderSource | undefined;
  if (headersFile) headers = headersFileSource(headersFile, `headers file ${options.headers}`);
  else if (options.chainTracker === 'woc') headers = chainServiceHeaderSource(chainService());

  const results: Record<string, unknown>[] = [];
  const verdicts: BundleVerdict[] = [];
  const human: string[] = [];
  for (const bundle of bundles) {
    const verdict = await checkProofBundle(bundle, {
      ...(bundle.format === PROOF_BUNDLE_FORMAT_V2 ? { ...(headers && { headers }) } : { woc: chainService() }),
      requiredConfirmations: confirmations,
      ...(options.issuerPubkey && { expectedIssuerPubKeyHex: options.issuerPubkey }),
      ...(directory && { issuerKeys: issuerKeyPolicy(directory) }),
    }).catch((err: unknown) => {
      throw new CliFailure(`cannot reach the chain service: ${(err as Error).message}`, EXIT.unreachable);
    });
    verdicts.push(verdict);
    results.push({ uid: bundle.uid, format: bundle.format, txid: bundle.anchor?.txid, ...verdict });
    human.push(describeVerdict(bundle, verdict, { directory, directorySource, pinned: Boolean(options.issuerPubkey) }));
  }
  out.result(results.length === 1 ? results[0] : results, human.join('\n'));
  return exitCodeOf(verdicts);
}

function describeVerdict(
  bundle: ProofBundle,
  verdict: BundleVerdict,
  keys: { directory: IssuerKeyDirectory | undefined; directorySource: string | undefined; pinned: boolean },
): string {
  const signer = bundle.issuerSignature?.pubKeyHex;
  const issuer = keys.directory
    ? `issuer key ${keys.directory.keys.find((k) => k.publicKey === signer)?.kid ?? signer} of the key directory ${keys.directorySource}`
    : keys.pinned
      ? 'the expected issuer key'
      : `issuer key ${signer} (not pinned)`;
  const details = (lines: string[], label: string) => lines.map((line) => `  ${label}: ${line}`);
  switch (verdict.status) {
    case 'authentic':
      return [
        `${bundle.uid}: AUTHENTIC, signed by ${issuer}, anchored in ${bundle.anchor.txid} with ${verdict.confirmations} confirmations`,
        ...details(verdict.checked, 'checked'),
      ].join('\n');
    case 'incomplete':
      return [
        `${bundle.uid}: INCOMPLETE: every check made passed (signed by ${issuer}), but not all could be made`,
        ...details(verdict.checked, 'checked'),
        ...details(verdict.unchecked, 'not checked'),
        '  give --headers <file> or --chain-tracker woc to check the chain inclusion',
      ].join('\n');
    default:
      return `${bundle.uid}: ${verdict.status.toUpperCase()}: ${verdict.reason}`;
  }
}

function readHeadersFile(file: string) {
  try {
    return parseHeadersFile(readJson(file));
  } catch (err) {
    if (err instanceof HeadersFileError) throw new CliFailure(`${file}: ${err.message}`, EXIT.usage);
    throw err;
  }
}

/** `patchproof headers export`: the chain follower's block headers as a headers file (docs/PROOFS.md, "Headers file"). */
async function exportHeaders(
  config: AppConfig,
  options: { network?: string; from?: string; to?: string; out?: string },
  json: boolean,
): Promise<number> {
  const out = output(json);
  const network = (options.network ?? config.woc.network) as ChainNetwork;
  if (network !== 'main' && network !== 'test') throw new CliFailure('--network: main or test', EXIT.usage);
  const bound = (value: string | undefined, name: string) => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new CliFailure(`--${name}: a block height`, EXIT.usage);
    return n;
  };
  const from = bound(options.from, 'from');
  const to = bound(options.to, 'to');
  const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
    throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
  });
  try {
    const height = { ...(from !== undefined && { $gte: from }), ...(to !== undefined && { $lte: to }) };
    const stored = await blockHeaderModel(mongo)
      .find({ network, ...(Object.keys(height).length > 0 && { height }) })
      .sort({ height: 1 })
      .lean();
    const file = {
      format: HEADERS_FILE_FORMAT,
      network,
      headers: stored.map((h) => ({ height: h.height, hash: h.hash, prevHash: h.prevHash, merkleRoot: h.merkleRoot, time: h.time })),
    };
    const text = `${JSON.stringify(file, null, 2)}\n`;
    const range = stored.length > 0 ? `heights ${stored[0]!.height}–${stored[stored.length - 1]!.height}` : 'none stored';
    if (options.out) {
      writeFileSync(options.out, text);
      out.result(
        { file: options.out, network, count: stored.length },
        `${stored.length} ${network} headers (${range}) written to ${options.out}`,
      );
    } else {
      process.stdout.write(text);
      out.progress(`${stored.length} ${network} headers (${range})`);
    }
    return EXIT.ok;
  } finally {
    await mongo.close();
  }
}

export function registerProofCommands(program: Command, context: CliContext): void {
  program
    .command('verify-proof')
    .description(
      'Check proof bundles (GET /v1/patches/:uid/proof) without our database. Format 2: offline with --headers, or --chain-tracker woc; with neither, says what it could not check (exit 5). Format 1: one chain lookup per anchor tx.',
    )
    .argument('<files...>', 'proof bundles (JSON)')
    .option(
      '--keys <file-or-url>',
      `the issuer key directory (a saved copy, or its URL); default: PUBLIC_BASE_URL${KEY_DIRECTORY_PATH} when PUBLIC_BASE_URL is set`,
    )
    .option(
      '--issuer-pubkey <hex>',
      'the issuer public key you expect (compressed hex); without it or a directory, the key in the bundle is reported',
    )
    .option('--confirmations <n>', 'confirmations the anchor must have', '1')
    .option(
      '--headers <file>',
      'a headers file (patchproof headers export, or headers from a node or WhatsOnChain): format 2 bundles are checked offline against it',
    )
    .option('--chain-tracker <name>', '"woc": ask the configured chain service (WOC_BASE_URL) which block is at each height')
    .action((files: string[], options: VerifyOptions) =>
      context.withConfig((config) => verifyProofs(config, files, options, context.json())),
    );

  const headers = program.command('headers').description('Block headers the chain follower keeps.');
  headers
    .command('export')
    .description('Write the stored block headers as a headers file for `verify-proof --headers` (read from MongoDB).')
    .option('--network <network>', 'main or test (default: WOC_NETWORK)')
    .option('--from <height>', 'first height')
    .option('--to <height>', 'last height')
    .option('--out <file>', 'write to this file (default: stdout)')
    .action((options: { network?: string; from?: string; to?: string; out?: string }) =>
      context.withConfig((config) => exportHeaders(config, options, context.json())),
    );
}

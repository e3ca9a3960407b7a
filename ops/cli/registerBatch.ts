import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { parse as parseCsv } from 'csv-parse/sync';
import type { AppConfig } from '../../src/config';
import type { BatchView, ItemView } from '../../src/bulkRegistration/view';
import { CliFailure, EXIT, output, type Output, type CliContext } from './common';

const PRODUCT_COLUMNS = ['name', 'category', 'sku', 'serial_number', 'material', 'brand'] as const;
const METADATA_COLUMNS = ['notes', 'image', 'patch_location'] as const;

/**
 * The items of a batch file. CSV: a header row naming `uid_tag_id`, `owner` and any of the optional product and
 * metadata columns (empty cells are left out). NDJSON (`.ndjson`, `.jsonl`): one POST /v1/patches body per line.
 */
export function batchItemsFromFile(file: string): { body: string; contentType: string; count: number } {
  const text = readFileSync(file, 'utf8');
  if (/\.(ndjson|jsonl)$/i.test(file)) {
    return { body: text, contentType: 'application/x-ndjson', count: text.split('\n').filter((l) => l.trim() !== '').length };
  }
  if (!/\.csv$/i.test(file)) throw new CliFailure(`${file}: expected a .csv, .ndjson or .jsonl file`, EXIT.usage);
  const rows = parseCsv<Record<string, string>>(text, { columns: true, skip_empty_lines: true, trim: true, bom: true });
  const items = rows.map((row) => {
    const pick = (names: readonly string[]) => Object.fromEntries(names.filter((n) => row[n]).map((n) => [n, row[n]]));
    const metadata = pick(METADATA_COLUMNS);
    return {
      product: { uid_tag_id: row.uid_tag_id ?? '', ...pick(PRODUCT_COLUMNS) },
      ...(Object.keys(metadata).length > 0 && { metadata }),
      auth: { owner: row.owner ?? '' },
    };
  });
  return { body: JSON.stringify(items), contentType: 'application/json', count: items.length };
}

async function api(
  base: string,
  apiKey: string,
  route: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  let response: Response;
  try {
    response = await fetch(`${base}${route}`, {
      ...init,
      headers: { 'x-api-key': apiKey, ...init.headers },
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw new CliFailure(`cannot reach the API at ${base}: ${(err as Error).message}`, EXIT.unreachable);
  }
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    throw new CliFailure(`the API at ${base} answered ${response.status} with something other than JSON`, EXIT.unreachable);
  }
}

async function registerBatch(
  config: AppConfig,
  out: Output,
  file: string,
  options: { idempotencyKey?: string; wait: boolean; results?: string; apiUrl?: string },
): Promise<number> {
  const base = (options.apiUrl ?? `http://127.0.0.1:${config.http.port}`).replace(/\/+$/, '');
  const { body, contentType, count } = batchItemsFromFile(file);
  // The file's own hash by default: submitting the same file again reaches the same batch.
  const idempotencyKey = options.idempotencyKey ?? `file-${createHash('sha256').update(body).digest('hex').slice(0, 40)}`;
  const posted = await api(base, config.auth.apiKey, '/v1/patch-batches', {
    method: 'POST',
    headers: { 'content-type': contentType, 'idempotency-key': idempotencyKey },
    body,
  });
  if (posted.status !== 202) {
    const error = posted.body.error as { code: string; message: string; details?: { batchId?: string } } | undefined;
    const batch = error?.details?.batchId ? ` (batch ${error.details.batchId})` : '';
    throw new CliFailure(
      `the API refused the batch (${posted.status} ${error?.code ?? ''}): ${error?.message ?? ''}${batch}`,
      EXIT.problem,
    );
  }
  const batchId = String(posted.body.batchId);
  const rejected = posted.body.rejected as { index: number; error: { message: string } }[];
  out.progress(`batch ${batchId}: ${count} items, ${String(posted.body.accepted)} accepted, ${rejected.length} refused at once`);
  for (const r of rejected.slice(0, 10)) out.progress(`  item ${r.index}: ${r.error.message}`);
  if (!options.wait) {
    out.result(posted.body, `batch ${batchId} accepted; follow it with: patchproof register-batch ${file} --wait (same file, same batch)`);
    return EXIT.ok;
  }

  const statusUrl = `/v1/patch-batches/${batchId}`;
  const bar = new SingleBar({
    // Records count once their anchor transaction is in the mempool; the batch completes at its confirmations.
    format: 'in mempool or anchored {value}/{total} | {rate} rec/s | ETA {eta_formatted} | {state}',
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 5_000,
  });
  const total = Number(posted.body.accepted);
  bar.start(total, 0, { rate: '0', state: 'accepted' });
  const began = Date.now();
  let view: BatchView;
  for (;;) {
    view = (await api(base, config.auth.apiKey, statusUrl)).body as unknown as BatchView;
    const onChain = view.counts.anchoring + view.counts.anchored;
    bar.update(Math.min(onChain, total), {
      rate: (onChain / ((Date.now() - began) / 1000)).toFixed(0),
      state: view.state,
    });
    if (view.state === 'completed' || view.state === 'failed') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  bar.stop();

  const items: ItemView[] = [];
  for (let cursor: number | null = -1; cursor !== null;) {
    const page = (await api(base, config.auth.apiKey, `${statusUrl}/items?limit=1000${cursor >= 0 ? `&cursor=${cursor}` : ''}`))
      .body as unknown as {
      items: ItemView[];
      nextCursor: number | null;
    };
    items.push(...page.items);
    cursor = page.nextCursor;
  }
  const resultsFile = options.results ?? path.join(path.dirname(file), `${path.basename(file).replace(/\.[^.]+$/, '')}.results.csv`);
  const csvCell = (v: string | undefined) => (v === undefined ? '' : /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  writeFileSync(
    resultsFile,
    [
      'index,uid,state,registrationId,txid,error',
      ...items.map((i) => [String(i.index), i.uid ?? '', i.state, i.registrationId, i.txid, i.error?.message].map(csvCell).join(',')),
    ].join('\n') + '\n',
  );
  const notAnchored = items.filter((i) => i.state !== 'anchored').length;
  out.result(
    { ...view, resultsFile },
    `batch ${batchId}: ${view.state}; ${Object.entries(view.counts)
      .filter(([, n]) => n > 0)
      .map(([state, n]) => `${n} ${state}`)
      .join(', ')}; txid ${view.txids.join(', ') || 'none'}; results in ${resultsFile}`,
  );
  return notAnchored > 0 || view.state === 'failed' ? EXIT.problem : EXIT.ok;
}

export function registerBatchCommand(program: Command, context: CliContext): void {
  program
    .command('register-batch')
    .description('Register a production run: POST a CSV or NDJSON file to /v1/patch-batches, optionally follow it to the end.')
    .argument(
      '<file>',
      'a .csv (header: uid_tag_id,owner[,name,category,sku,serial_number,material,brand,notes,image,patch_location]) or .ndjson file',
    )
    .option('--idempotency-key <key>', "the batch's Idempotency-Key (default: derived from the file's contents)")
    .option('--wait', 'follow the batch with a progress bar until it completes, then write the results file')
    .option('--results <file>', 'where --wait writes uid, state, registrationId, txid and error per item (default: <file>.results.csv)')
    .option('--api-url <url>', 'base URL of the API (default: http://127.0.0.1:$PORT)')
    .action((file: string, options: { idempotencyKey?: string; wait?: boolean; results?: string; apiUrl?: string }) =>
      context.withConfig((config) => registerBatch(config, output(context.json()), file, { ...options, wait: options.wait ?? false })),
    );
}

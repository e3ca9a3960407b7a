import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DEV_DEFAULTS } from '../../src/config';
import { isSecretField } from '../../src/logging/redact';
import { decodedText, type ScanSource } from './secretsScan';
import { TEST_NAMESPACES } from './testEnv';

/** What the integration run left behind, for the secrets scan. */
export interface RunSources {
  sources: ScanSource[];
  /** Secret values the run configured, by name (from the capture directory's secrets files and the dev defaults). */
  literals: Record<string, string>;
  /** Private keys the run registered (64 hex), searched through their public keys rather than one by one. */
  privateKeys: string[];
  files: number;
  bytes: number;
  histories: number;
  /** Per namespace: histories read and the time it took. */
  namespaces: { namespace: string; histories: number; ms: number }[];
  /** Histories listed but not read before the deadline; any is a failure of the scan, not a pass. */
  unread: number;
}

/** Data directories of the services: binary stores, not text anyone reads. */
const DATA_DIRS = new Set(['mongo', 'prometheus', 'query-shapes']);
const TEXT_FILE = /\.(log|jsonl|txt|out|err)$/;
/** Fetches at a time; the dev server answers each in a few milliseconds. */
const HISTORY_CONCURRENCY = 16;
/** The scan of the histories stops here; what is left unread then fails the run (it is never passed over). */
export const HISTORY_DEADLINE_MS = 120_000;

export async function collectRunSources(options: { scratch: string; temporalAddress?: string }): Promise<RunSources> {
  const literals: Record<string, string> = {};
  const privateKeys: string[] = [];
  for (const [name, value] of Object.entries(DEV_DEFAULTS)) if (isSecretField(name)) literals[`${name} (dev default)`] = value;
  const sources: ScanSource[] = [];
  let bytes = 0;
  for (const file of textFiles(options.scratch)) {
    const text = readFileSync(file, 'utf8');
    const relative = path.relative(options.scratch, file);
    if (/^capture\/secrets-/.test(relative)) {
      for (const line of text.split('\n').filter(Boolean)) {
        const { name, value } = JSON.parse(line) as { name: string; value: string };
        if (/^[0-9a-fA-F]{64}$/.test(value)) privateKeys.push(value);
        else literals[literalName(literals, name, value)] = value;
      }
      continue;
    }
    bytes += text.length;
    sources.push({ where: relative, text });
  }
  const files = sources.length;
  const histories = options.temporalAddress ? await workflowHistories(options.temporalAddress) : { sources: [], namespaces: [], unread: 0 };
  sources.push(...histories.sources);
  return {
    sources,
    literals,
    privateKeys,
    files,
    bytes,
    histories: histories.sources.length,
    namespaces: histories.namespaces,
    unread: histories.unread,
  };
}

/** A name for a configured value; the same name with different values (JWT_SECRET in two files) gets a suffix. */
function literalName(literals: Record<string, string>, name: string, value: string): string {
  for (let i = 1; ; i += 1) {
    const candidate = i === 1 ? name : `${name}#${i}`;
    if (literals[candidate] === undefined || literals[candidate] === value) return candidate;
  }
}

function textFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!DATA_DIRS.has(entry.name)) out.push(...textFiles(full));
    } else if (entry.isFile() && TEXT_FILE.test(entry.name) && statSync(full).size > 0) {
      out.push(full);
    }
  }
  return out.sort();
}

/**
 * Every workflow history, open or closed, of every test namespace, as text with every payload decoded (inputs,
 * results, memo, search attributes, signals, failure messages and stacks).
 */
async function workflowHistories(
  address: string,
): Promise<{ sources: ScanSource[]; namespaces: RunSources['namespaces']; unread: number }> {
  const deadline = Date.now() + HISTORY_DEADLINE_MS;
  const connection = await Connection.connect({ address, connectTimeout: '5s' });
  try {
    const sources: ScanSource[] = [];
    const namespaces: RunSources['namespaces'] = [];
    let unread = 0;
    for (const namespace of TEST_NAMESPACES) {
      const started = Date.now();
      const before = sources.length;
      const client = new Client({ connection, namespace });
      const executions: { workflowId: string; runId: string }[] = [];
      for await (const execution of client.workflow.list()) executions.push({ workflowId: execution.workflowId, runId: execution.runId });
      for (let i = 0; i < executions.length; i += HISTORY_CONCURRENCY) {
        if (Date.now() > deadline) {
          unread += executions.length - i;
          break;
        }
        const batch = executions.slice(i, i + HISTORY_CONCURRENCY);
        sources.push(
          ...(await Promise.all(
            batch.map(async ({ workflowId, runId }) => ({
              where: `${namespace}/${workflowId}/${runId}`,
              text: decodedText(await client.workflow.getHandle(workflowId, runId).fetchHistory()),
            })),
          )),
        );
      }
      namespaces.push({ namespace, histories: sources.length - before, ms: Date.now() - started });
    }
    return { sources, namespaces, unread };
  } finally {
    await connection.close();
  }
}

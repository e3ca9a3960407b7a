import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { testEnv } from './testEnv';
import { decodedText } from './secretsScan';

export const HISTORIES_DIR = path.resolve(__dirname, '..', 'histories');

/**
 * Saves a finished workflow's history into test/histories/ when PATCHPROOF_RECORD_HISTORIES=1. The replay test
 * replays every file there against the current workflow code, so a change that breaks determinism fails CI.
 */
export async function recordHistoryIfAsked(
  client: Client,
  workflowId: string,
  name: string,
  runId?: string,
  options: { running?: boolean } = {},
): Promise<void> {
  if (process.env.PATCHPROOF_RECORD_HISTORIES !== '1') return;
  // Exported with the same command an operator or auditor uses; its JSON is what the replayer accepts.
  // Failed runs are recorded too: their failure path must replay as well. A long-lived workflow (the anchor
  // batcher) is recorded as it stands: the replayer accepts a history that has not closed.
  if (!options.running) {
    await client.workflow
      .getHandle(workflowId, runId)
      .result()
      .catch(() => undefined);
  }
  const json = execFileSync(testEnv('temporalCli'), [
    'workflow',
    'show',
    '--workflow-id',
    workflowId,
    '--output',
    'json',
    '--address',
    testEnv('temporalAddress'),
    '--namespace',
    client.options.namespace,
    ...(runId ? ['--run-id', runId] : []),
  ]);
  writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), json);
}

export interface RecordedHistory {
  file: string;
  workflowType: string;
  history: unknown;
}

export function loadRecordedHistories(): RecordedHistory[] {
  return readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const history = JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as {
        events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[];
      };
      const workflowType = history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? 'unknown';
      return { file, workflowType, history };
    });
}

/**
 * A workflow's history as text with every payload decoded (JSON-encoded payloads are base64 in the raw history), for
 * tests that look for what must never be in a history: keys, secrets, personal data.
 */
export async function historyText(client: Client, workflowId: string): Promise<string> {
  return decodedText(await client.workflow.getHandle(workflowId).fetchHistory());
}

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PublicKey } from '@bsv/sdk';
import { WorkflowNotFoundError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createApp } from '../../../api/app';
import { registerModels } from '../../../src/db/models';
import { ensureIndexes } from '../../../src/db/indexes';
import { decodeHistory } from '../../../src/history/encoding';
import { archivedHistoryId, HISTORY_ARCHIVE_WORKFLOW_ID, HISTORY_WATERMARK_ID } from '../../../src/history/ids';
import { historyArchiveInput, startHistoryArchive } from '../../../src/history/launch';
import { archivedHistoryModel, historyWatermarkModel } from '../../../src/history/models';
import { startSync, waitForPoolOperation } from '../../../src/pool/launch';
import { registrationWorkflowId } from '../../../src/registration/ids';
import type { HistoryArchiveReport } from '../../../workflows/history/shared';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { runPatchproof as patchproof } from '../../support/processes';
import { testEnvironment } from '../../support/stack';
import { testEnv } from '../../support/testEnv';

describe('workflow history archive', () => {
  let stack: PoolStack;
  let api: Listening;

  beforeAll(async () => {
    const startedAt = new Date();
    stack = await startPoolStack(
      {
        FEE_PER_KB: '100',
        ANCHOR_CONFIRMATIONS: '1',
        // Small enough that a registration's history is stored compressed, so both encodings are exercised.
        HISTORY_ARCHIVE_COMPRESS_ABOVE_BYTES: '4096',
        HISTORY_ARCHIVE_SETTLE_SECONDS: '0',
        HISTORY_ARCHIVE_BATCH: '5',
      },
      { blockIntervalMs: 300 },
    );
    registerModels(stack.deps.mongo);
    await ensureIndexes(stack.deps.mongo);
    // Earlier files in this jest worker closed runs in the same namespace: the archive starts from this file's start.
    await historyWatermarkModel(stack.deps.mongo).updateOne(
      { _id: HISTORY_WATERMARK_ID },
      { $set: { closedBefore: startedAt, updatedAt: startedAt, updatedBy: 'test' } },
      { upsert: true },
    );
    api = await listen(createApp(stack.deps));
    for (let i = 0; i < 3; i++) await stack.fund(stack.accounts.funding.address, 20_000 + i);
    const sync = await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test');
    await waitForPoolOperation(stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 100 });
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const http = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(`${api.baseUrl}${url}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-api-key': stack.deps.config.auth.apiKey },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** The archive reads visibility, which records a close a moment after the run closes. */
  const untilVisiblyClosed = async (workflowId: string, runId: string) => {
    // Deletion is asynchronous in Temporal: on a busy machine it can take well over the usual second.
    for (let i = 0; i < 450; i++) {
      for await (const execution of stack.deps.temporal.workflow.list({
        query: `WorkflowId = '${workflowId}' AND ExecutionStatus != 'Running'`,
      })) {
        if (execution.runId === runId) return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${workflowId} ${runId} never showed as closed in visibility`);
  };
  const archiveNow = async () => {
    const started = await startHistoryArchive(stack.deps.temporal, historyArchiveInput(stack.deps.config.historyArchive, 'test'));
    const report = (await stack.deps.temporal.workflow.getHandle(started.workflowId, started.runId).result()) as HistoryArchiveReport;
    return { ...started, report };
  };

  it('archives a completed registration, and the copy read back from MongoDB replays against the current workflow code after Temporal forgot the run', async () => {
    const uid = 'PP-HIST-1';
    const owner = PublicKey.fromString(stack.kms.keys.ensure('owner-history').pubKeyHex).toAddress('testnet');
    const accepted = await http('POST', '/v1/patches', {
      product: { uid_tag_id: uid, name: 'Field jacket', category: 'apparel', sku: 'FJ-01', serial_number: uid, material: 'wool' },
      metadata: { notes: 'history test', image: 'https://img.example/fj.png', patch_location: 'left sleeve' },
      auth: { owner },
    });
    expect(accepted.status).toBe(202);
    const workflowId = registrationWorkflowId(uid);
    await stack.deps.temporal.workflow.getHandle(workflowId).result();
    const { runId } = await stack.deps.temporal.workflow.getHandle(workflowId).describe();
    await untilVisiblyClosed(workflowId, runId);

    const first = await archiveNow();
    expect(first.report).toMatchObject({ more: false });
    expect(first.report.archived).toBeGreaterThanOrEqual(2); // the pool sync and the registration, at least
    await recordHistoryIfAsked(stack.deps.temporal, HISTORY_ARCHIVE_WORKFLOW_ID, 'history-archive-completed', first.runId);

    const histories = archivedHistoryModel(stack.deps.mongo);
    const stored = (await histories.findById(archivedHistoryId(workflowId, runId)).lean())!;
    expect(stored).toMatchObject({ workflowId, runId, workflowType: 'registrationWorkflow', status: 'COMPLETED', encoding: 'gzip-base64' });
    expect(stored.jsonBytes).toBeGreaterThan(4096);
    const watermark = (await historyWatermarkModel(stack.deps.mongo).findById(HISTORY_WATERMARK_ID).lean())!;
    expect(watermark.closedBefore.getTime()).toBeGreaterThanOrEqual(stored.closeTime.getTime());

    await untilVisiblyClosed(HISTORY_ARCHIVE_WORKFLOW_ID, first.runId);
    // A second run finds nothing new up to the old watermark and writes each run once.
    const second = await archiveNow();
    expect(second.report.more).toBe(false);
    expect(await histories.countDocuments({ workflowId })).toBe(1);
    const moved = (await historyWatermarkModel(stack.deps.mongo).findById(HISTORY_WATERMARK_ID).lean())!;
    expect(moved.closedBefore.getTime()).toBeGreaterThanOrEqual(watermark.closedBefore.getTime());
    // The first archive run closed before the second listed: it is archived too, as any other workflow.
    expect(await histories.countDocuments({ _id: archivedHistoryId(HISTORY_ARCHIVE_WORKFLOW_ID, first.runId) })).toBe(1);

    // Retention, compressed: delete the run from Temporal, as retention would after the namespace's period.
    await stack.deps.temporal.workflowService.deleteWorkflowExecution({
      namespace: stack.deps.temporal.options.namespace,
      workflowExecution: { workflowId, runId },
    });
    // Deletion is asynchronous in Temporal: on a busy machine it can take well over the usual second.
    for (let i = 0; i < 450; i++) {
      const gone = await stack.deps.temporal.workflow
        .getHandle(workflowId, runId)
        .describe()
        .then(() => false)
        .catch((err: unknown) => err instanceof WorkflowNotFoundError);
      if (gone) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await expect(stack.deps.temporal.workflow.getHandle(workflowId, runId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);

    // The auditor's commands: list the archived runs, export one, replay it with the SDK.
    const env = testEnvironment({ ...stack.env, MONGODB_URI: stack.deps.config.mongo.uri, LOG_LEVEL: 'warn' });
    const shown = await patchproof(['history', 'show', workflowId], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`${runId}  registrationWorkflow  COMPLETED`);
    expect(shown.stdout).toContain(`sha256 ${stored.sha256}`);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'history-export-')), `${workflowId}.json`);
    const exported = await patchproof(['history', 'export', workflowId, '--run-id', runId, '--out', file], env);
    expect(exported.code).toBe(0);
    const json = readFileSync(file, 'utf8');
    expect(json).toBe(decodeHistory(stored));
    const history = JSON.parse(json) as { events: { eventType: string }[] };
    expect(history.events).toHaveLength(stored.historyLength);
    expect(history.events[0]?.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
    await expect(
      Worker.runReplayHistory({ workflowBundle: { codePath: testEnv('workflowBundle') } }, history, `${workflowId}@${runId}`),
    ).resolves.toBeUndefined();
    const replayed = await patchproof(['history', 'replay', file, '--bundle', testEnv('workflowBundle')], env);
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toContain('replay ok');
    // A history the code would not produce is refused: the same file with its activity renamed.
    const tampered = path.join(path.dirname(file), 'tampered.json');
    writeFileSync(tampered, json.replace(/"prepareRegistration"/g, '"prepareSomethingElse"'));
    expect(json).toContain('"prepareRegistration"');
    const refused = await patchproof(['history', 'replay', tampered, '--bundle', testEnv('workflowBundle')], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('replay of');

    const missing = await patchproof(['history', 'export', 'registration-PP-NEVER'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no archived history for workflow registration-PP-NEVER');
    // Five CLI processes (each starts tsx) on a shared 2-core machine.
  }, 240_000);

  it('refuses a damaged archived copy instead of handing it to an auditor', async () => {
    const [doc] = await archivedHistoryModel(stack.deps.mongo).find({ workflowType: 'registrationWorkflow' }).limit(1).lean();
    expect(doc).toBeDefined();
    const json = decodeHistory(doc!);
    expect(JSON.parse(json)).toHaveProperty('events');
    const damaged = { ...doc!, encoding: 'json' as const, history: json.replace('EVENT_TYPE', 'EVENT_TYPF') };
    expect(() => decodeHistory(damaged)).toThrow(/does not match its sha256/);
  });
});

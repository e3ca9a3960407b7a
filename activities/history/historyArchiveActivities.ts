import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { Connection } from 'mongoose';
import type { HistoryArchiveConfig } from '../../src/config';
import { encodeHistory } from '../../src/history/encoding';
import { archivedHistoryId, HISTORY_WATERMARK_ID } from '../../src/history/ids';
import { archivedHistoryModel, historyWatermarkModel, type ArchivedHistoryDocument } from '../../src/history/models';
import type { Logger } from '../../src/logging/logger';
import type { ArchiveBatchResult } from '../../workflows/history/shared';

export interface HistoryArchiveActivityDeps {
  mongo: Connection;
  temporal?: Client;
  logger: Logger;
  historyArchive: Pick<HistoryArchiveConfig, 'compressAboveBytes'>;
}

/** Before any run: the archive starts from the beginning of the namespace. */
const BEGINNING = new Date(0);
/** Existence checks stay below FerretDB's 50-statement comfort zone. */
const LOOKUP_CHUNK = 40;

/** A closed run as visibility lists it: the archived document's own fields, before its history is fetched. */
type ClosedRun = Pick<
  ArchivedHistoryDocument,
  'workflowId' | 'runId' | 'workflowType' | 'status' | 'startTime' | 'closeTime' | 'historyLength'
>;

/**
 * Archives closed workflow histories from the watermark on. Visibility cannot sort (SQL visibility), so a call
 * lists the whole window [watermark, now − settle), sorts it by close time and stores up to `batch` runs not yet
 * archived; the watermark then moves to the close time of the first run left over, or to the window's end.
 */
export function createHistoryArchiveActivities(deps: HistoryArchiveActivityDeps) {
  const histories = archivedHistoryModel(deps.mongo);
  const watermarks = historyWatermarkModel(deps.mongo);

  async function listClosed(temporal: Client, from: Date, to: Date): Promise<ClosedRun[]> {
    const query = `ExecutionStatus != 'Running' AND CloseTime >= '${from.toISOString()}' AND CloseTime < '${to.toISOString()}'`;
    const runs: ClosedRun[] = [];
    for await (const execution of temporal.workflow.list({ query })) {
      if (!execution.closeTime) continue;
      runs.push({
        workflowId: execution.workflowId,
        runId: execution.runId,
        workflowType: execution.type,
        status: execution.status.name,
        startTime: execution.startTime,
        closeTime: execution.closeTime,
        historyLength: execution.historyLength,
      });
    }
    return runs.sort(
      (a, b) => a.closeTime.getTime() - b.closeTime.getTime() || a.workflowId.localeCompare(b.workflowId) || a.runId.localeCompare(b.runId),
    );
  }

  async function alreadyArchived(runs: ClosedRun[]): Promise<Set<string>> {
    const ids = runs.map((r) => archivedHistoryId(r.workflowId, r.runId));
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
      const docs = await histories.find({ _id: { $in: ids.slice(i, i + LOOKUP_CHUNK) } }, { _id: 1 }).lean();
      for (const doc of docs) found.add(doc._id);
    }
    return found;
  }

  async function archiveOne(temporal: Client, run: ClosedRun): Promise<void> {
    const history = await temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    const encoded = encodeHistory(historyToJSON(history), deps.historyArchive.compressAboveBytes);
    // A closed run's history never changes: insert once, and a retry finds it there.
    await histories.updateOne(
      { _id: archivedHistoryId(run.workflowId, run.runId) },
      { $setOnInsert: { ...run, ...encoded, archivedAt: new Date() } },
      { upsert: true },
    );
  }

  return {
    async archiveClosedHistories(input: { batch: number; settleSeconds: number }): Promise<ArchiveBatchResult> {
      const temporal = deps.temporal;
      if (!temporal) throw ApplicationFailure.nonRetryable('the history archive needs a Temporal client', 'HistoryArchiveMisconfigured');
      const context = Context.current();
      const mark = await watermarks.findById(HISTORY_WATERMARK_ID).lean();
      const from = mark?.closedBefore ?? BEGINNING;
      const windowEnd = new Date(Date.now() - input.settleSeconds * 1000);
      if (windowEnd <= from) return { archived: 0, alreadyArchived: 0, closedBefore: from.toISOString(), more: false };

      const runs = await listClosed(temporal, from, windowEnd);
      const present = await alreadyArchived(runs);
      let archived = 0;
      let closedBefore = windowEnd;
      let more = false;
      for (const run of runs) {
        if (present.has(archivedHistoryId(run.workflowId, run.runId))) continue;
        if (archived >= input.batch) {
          // Everything that closed before this run is stored; ties at its close time are skipped as present next time.
          closedBefore = run.closeTime;
          more = true;
          break;
        }
        await archiveOne(temporal, run);
        archived += 1;
        context.heartbeat({ archived });
      }
      const execution = context.info.workflowExecution;
      const updatedBy = execution ? archivedHistoryId(execution.workflowId, execution.runId) : 'unknown';
      await watermarks.updateOne(
        { _id: HISTORY_WATERMARK_ID },
        { $set: { closedBefore, updatedAt: new Date(), updatedBy } },
        { upsert: true },
      );
      deps.logger.info('workflow histories archived', {
        archived,
        alreadyArchived: present.size,
        closedBefore: closedBefore.toISOString(),
        more,
      });
      return { archived, alreadyArchived: present.size, closedBefore: closedBefore.toISOString(), more };
    },
  };
}

export type HistoryArchiveActivities = ReturnType<typeof createHistoryArchiveActivities>;

import { Schema, type Connection, type Model } from 'mongoose';

/**
 * One closed workflow run's full history, as `temporal workflow show --output json` prints it, kept after the
 * namespace's retention has deleted it from Temporal. Written once (histories of closed runs never change).
 */
export interface ArchivedHistoryDocument {
  /** `<workflowId>@<runId>` (archivedHistoryId). */
  _id: string;
  workflowId: string;
  runId: string;
  workflowType: string;
  /** COMPLETED, FAILED, TERMINATED, … as visibility reported it. */
  status: string;
  startTime: Date;
  closeTime: Date;
  historyLength: number;
  /** `json`: the history JSON as text; `gzip-base64`: gzip of that text, base64. */
  encoding: 'json' | 'gzip-base64';
  history: string;
  /** SHA-256 (hex) of the uncompressed history JSON: an auditor checks the copy against it. */
  sha256: string;
  jsonBytes: number;
  archivedAt: Date;
}

const archivedHistorySchema = new Schema<ArchivedHistoryDocument>(
  {
    _id: { type: String, required: true },
    workflowId: { type: String, required: true },
    runId: { type: String, required: true },
    workflowType: { type: String, required: true },
    status: { type: String, required: true },
    startTime: { type: Date, required: true },
    closeTime: { type: Date, required: true },
    historyLength: { type: Number, required: true },
    encoding: { type: String, required: true, enum: ['json', 'gzip-base64'] },
    history: { type: String, required: true },
    sha256: { type: String, required: true },
    jsonBytes: { type: Number, required: true },
    archivedAt: { type: Date, required: true },
  },
  { collection: 'workflow_histories', versionKey: false },
);
// `patchproof history show|export <workflowId>`: every archived run of one workflow id.
archivedHistorySchema.index({ workflowId: 1 });

export function archivedHistoryModel(connection: Connection): Model<ArchivedHistoryDocument> {
  return (
    (connection.models.ArchivedHistory as Model<ArchivedHistoryDocument> | undefined) ??
    connection.model<ArchivedHistoryDocument>('ArchivedHistory', archivedHistorySchema)
  );
}

/** Where the archive resumes: every execution that closed before `closedBefore` has been archived. */
export interface HistoryWatermarkDocument {
  _id: string;
  closedBefore: Date;
  updatedAt: Date;
  /** The run that moved it last (`<workflowId>@<runId>`). */
  updatedBy: string;
}

const historyWatermarkSchema = new Schema<HistoryWatermarkDocument>(
  {
    _id: { type: String, required: true },
    closedBefore: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    updatedBy: { type: String, required: true },
  },
  { collection: 'workflow_history_watermarks', versionKey: false },
);

export function historyWatermarkModel(connection: Connection): Model<HistoryWatermarkDocument> {
  return (
    (connection.models.HistoryWatermark as Model<HistoryWatermarkDocument> | undefined) ??
    connection.model<HistoryWatermarkDocument>('HistoryWatermark', historyWatermarkSchema)
  );
}

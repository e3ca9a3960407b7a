import { Schema, type Connection, type Model } from 'mongoose';
import type { SystemCheckReport } from '../../../workflows/system/shared';

/** Projection of finished system checks, keyed by check id so a retried write lands on the same document. */
export interface SystemCheckDocument extends SystemCheckReport {
  _id: string;
}

const probeSchema = new Schema(
  {
    dependency: { type: String, required: true },
    ok: { type: Boolean, required: true },
    latencyMs: Number,
    error: String,
  },
  { _id: false },
);

const systemCheckSchema = new Schema<SystemCheckDocument>(
  {
    _id: { type: String, required: true },
    checkId: { type: String, required: true },
    requestedBy: { type: String, required: true },
    status: { type: String, required: true, enum: ['ok', 'degraded'] },
    probes: { type: [probeSchema], required: true },
    startedAt: { type: String, required: true },
    completedAt: { type: String, required: true },
  },
  { collection: 'system_checks', versionKey: false },
);
systemCheckSchema.index({ completedAt: -1 });

export function systemCheckModel(connection: Connection): Model<SystemCheckDocument> {
  return (
    (connection.models.SystemCheck as Model<SystemCheckDocument> | undefined) ??
    connection.model<SystemCheckDocument>('SystemCheck', systemCheckSchema)
  );
}

/** Probe documents written by the Mongo probe; one per check id. */
export interface ProbeDocument {
  _id: string;
  writtenAt: Date;
}

const probeDocSchema = new Schema<ProbeDocument>(
  { _id: { type: String, required: true }, writtenAt: { type: Date, required: true } },
  { collection: 'system_probes', versionKey: false },
);

export function probeModel(connection: Connection): Model<ProbeDocument> {
  return (
    (connection.models.SystemProbe as Model<ProbeDocument> | undefined) ?? connection.model<ProbeDocument>('SystemProbe', probeDocSchema)
  );
}

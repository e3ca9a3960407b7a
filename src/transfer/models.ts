import { Schema, type Connection, type Model } from 'mongoose';
import type { MerkleProof } from '../anchoring/merkle';

export type TransferStatus = 'pending' | 'anchoring' | 'anchored' | 'failed';

/** One document per transfer workflow (`_id` = its id): the signed, anchored link in a patch's ownership chain. */
export interface TransferDocument {
  _id: string;
  uid: string;
  seq: number;
  status: TransferStatus;
  /** The canonical transfer record (a TransferRecord), stored as signed. */
  record: Record<string, unknown>;
  recordHash: string;
  issuerSignature: { signatureDerHex: string; pubKeyHex: string; keyIdentifier: string } | null;
  anchor: { txid: string; vout: number; proof: MerkleProof; blockHeight: number | null } | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const transferSchema = new Schema<TransferDocument>(
  {
    _id: { type: String, required: true },
    uid: { type: String, required: true },
    seq: { type: Number, required: true },
    status: { type: String, required: true, enum: ['pending', 'anchoring', 'anchored', 'failed'] },
    record: { type: Schema.Types.Mixed, required: true },
    recordHash: { type: String, required: true },
    issuerSignature: { type: Schema.Types.Mixed, default: null },
    anchor: { type: Schema.Types.Mixed, default: null },
    lastError: { type: String, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'transfers', versionKey: false, minimize: false },
);
transferSchema.index({ uid: 1, seq: 1 });
transferSchema.index({ 'anchor.txid': 1 });

export function transferModel(connection: Connection): Model<TransferDocument> {
  return (
    (connection.models.Transfer as Model<TransferDocument> | undefined) ?? connection.model<TransferDocument>('Transfer', transferSchema)
  );
}

import { Schema, type Connection, type Model } from 'mongoose';

/**
 * The UTXO pool: one document per output we control, keyed by outpoint. Status moves available → reserved → spent
 * and never back by age; a reservation names the workflow that holds it. Confirmations are not stored: they are
 * counted from `blockHeight` and the chain height at the time of reading.
 */
export type UtxoStatus = 'available' | 'reserved' | 'spent';

export interface UtxoDocument {
  _id: string;
  txid: string;
  vout: number;
  satoshis: number;
  lockingScriptHex: string;
  keyIdentifier: string;
  status: UtxoStatus;
  /** Height of the block that mined it; null while unconfirmed. */
  blockHeight: number | null;
  reservedBy?: string | null;
  reservedAt?: Date | null;
  spentBy?: string | null;
  /**
   * Consecutive syncs in which the chain knew neither this output nor its transaction. Such an output is not
   * reserved (it may be one of ours still propagating, or one a reorg evicted); after a few syncs it is retired.
   */
  unseenSyncs: number;
}

/**
 * Who holds a UTXO: one document per claimed outpoint, _id = outpoint. Claiming is an insert, atomic on any
 * Mongo-wire store through _id uniqueness; a conditional findOneAndUpdate is not (FerretDB's SQLite backend lets two
 * concurrent calls claim the same document, which the reservation tests caught).
 */
export interface ClaimDocument {
  _id: string;
  owner: string;
  slot: string;
  claimedAt: Date;
}

/** One document per (owner, slot): its _id makes "one UTXO per slot of a workflow" atomic on any Mongo-wire store. */
export interface ReservationDocument {
  _id: string;
  owner: string;
  utxoId: string;
  createdAt: Date;
}

const utxoSchema = new Schema<UtxoDocument>(
  {
    _id: { type: String, required: true },
    txid: { type: String, required: true },
    vout: { type: Number, required: true },
    satoshis: { type: Number, required: true },
    lockingScriptHex: { type: String, required: true },
    keyIdentifier: { type: String, required: true },
    status: { type: String, required: true, enum: ['available', 'reserved', 'spent'] },
    blockHeight: { type: Number, default: null },
    reservedBy: { type: String, default: null },
    reservedAt: { type: Date, default: null },
    spentBy: { type: String, default: null },
    unseenSyncs: { type: Number, default: 0 },
  },
  { collection: 'utxos', versionKey: false },
);
utxoSchema.index({ status: 1, keyIdentifier: 1, satoshis: 1 });
utxoSchema.index({ reservedBy: 1 });
utxoSchema.index({ txid: 1 });

const reservationSchema = new Schema<ReservationDocument>(
  {
    _id: { type: String, required: true },
    owner: { type: String, required: true },
    utxoId: { type: String, required: true },
    createdAt: { type: Date, required: true },
  },
  { collection: 'utxo_reservations', versionKey: false },
);
reservationSchema.index({ owner: 1 });
// Recording a spend deletes the reservations of the spent outputs by output id.
reservationSchema.index({ utxoId: 1 });

const claimSchema = new Schema<ClaimDocument>(
  {
    _id: { type: String, required: true },
    owner: { type: String, required: true },
    slot: { type: String, required: true },
    claimedAt: { type: Date, required: true },
  },
  { collection: 'utxo_claims', versionKey: false },
);
// A run's claims are read and given back by owner: one indexed equality instead of `_id: {$in}` over every claim.
claimSchema.index({ owner: 1 });

export function claimModel(connection: Connection): Model<ClaimDocument> {
  return (connection.models.UtxoClaim as Model<ClaimDocument> | undefined) ?? connection.model<ClaimDocument>('UtxoClaim', claimSchema);
}

export function utxoModel(connection: Connection): Model<UtxoDocument> {
  return (connection.models.Utxo as Model<UtxoDocument> | undefined) ?? connection.model<UtxoDocument>('Utxo', utxoSchema);
}

export function reservationModel(connection: Connection): Model<ReservationDocument> {
  return (
    (connection.models.UtxoReservation as Model<ReservationDocument> | undefined) ??
    connection.model<ReservationDocument>('UtxoReservation', reservationSchema)
  );
}

export function outpointId(txid: string, vout: number): string {
  return `${txid}:${vout}`;
}

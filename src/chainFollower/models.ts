import { Schema, type Connection, type Model } from 'mongoose';
import type { TscProof } from '../woc/tscProof';

export type ChainNetwork = 'main' | 'test';

/**
 * One block header the follower holds, keyed `<network>:<height>` so every lookup is an `_id` equality (the
 * embedded FerretDB pushes down nothing else). `anchorTxids` lists the anchor txs proven in this block, so a reorg
 * clears exactly those by `_id`.
 */
export interface BlockHeaderDocument {
  _id: string;
  network: ChainNetwork;
  height: number;
  hash: string;
  prevHash: string;
  merkleRoot: string;
  /** Block time, seconds since the epoch. */
  time: number;
  /**
   * The rest of the 80-byte header, so proof bundles can carry it (docs/PROOFS.md). Absent on headers stored before
   * the follower kept them; `completeProvenAnchorTxs` fills them in for blocks that hold anchor txs.
   */
  version?: number | null;
  bits?: number | null;
  nonce?: number | null;
  anchorTxids: string[];
}

/** The follower's tip per network (`_id` = network): what verification counts confirmations from. */
export interface ChainTipDocument {
  _id: ChainNetwork;
  height: number;
  hash: string;
  time: number;
  /** When the follower last confirmed this tip against the chain service. */
  syncedAt: Date;
}

/**
 * An anchor transaction (`_id` = txid) and, once proven, its block and Merkle proof checked against the stored
 * header. `outputs` are the tx's anchor outputs, read from its raw bytes (hashed back to the txid).
 */
export interface AnchorTxDocument {
  _id: string;
  network: ChainNetwork;
  state: 'unproven' | 'proven';
  blockHeight: number | null;
  blockHash: string | null;
  blockTime: number | null;
  proof: TscProof | null;
  outputs: { vout: number; satoshis: number; scriptHex: string }[] | null;
  /**
   * The signed transaction's bytes (hex), hashed back to the txid: stored at broadcast, or by the follower from the
   * chain service for a tx broadcast elsewhere or before the bytes were kept. Proof bundles carry them in BEEF.
   */
  rawHex?: string | null;
  provenAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const headerSchema = new Schema<BlockHeaderDocument>(
  {
    _id: { type: String, required: true },
    network: { type: String, required: true },
    height: { type: Number, required: true },
    hash: { type: String, required: true, index: true },
    prevHash: { type: String, required: true },
    merkleRoot: { type: String, required: true },
    time: { type: Number, required: true },
    version: { type: Number, default: null },
    bits: { type: Number, default: null },
    nonce: { type: Number, default: null },
    anchorTxids: { type: [String], default: [] },
  },
  { collection: 'block_headers', versionKey: false },
);
// `patchproof headers export` reads a range of heights; the follower looks for headers stored without their whole
// 80 bytes (only those from before it kept version, bits and nonce have a null version).
headerSchema.index({ network: 1, height: 1 });
headerSchema.index({ network: 1, version: 1 });

const tipSchema = new Schema<ChainTipDocument>(
  {
    _id: { type: String, required: true },
    height: { type: Number, required: true },
    hash: { type: String, required: true },
    time: { type: Number, required: true },
    syncedAt: { type: Date, required: true },
  },
  { collection: 'chain_tips', versionKey: false },
);

const anchorTxSchema = new Schema<AnchorTxDocument>(
  {
    _id: { type: String, required: true },
    network: { type: String, required: true },
    state: { type: String, required: true, enum: ['unproven', 'proven'] },
    blockHeight: { type: Number, default: null },
    blockHash: { type: String, default: null },
    blockTime: { type: Number, default: null },
    proof: { type: Schema.Types.Mixed, default: null },
    outputs: { type: Schema.Types.Mixed, default: null },
    rawHex: { type: String, default: null },
    provenAt: { type: Date, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'anchor_txs', versionKey: false, minimize: false },
);
// The follower's work list; verification never filters on it.
anchorTxSchema.index({ state: 1, network: 1 });

export const headerId = (network: ChainNetwork, height: number): string => `${network}:${height}`;

export function blockHeaderModel(connection: Connection): Model<BlockHeaderDocument> {
  return (
    (connection.models.BlockHeader as Model<BlockHeaderDocument> | undefined) ??
    connection.model<BlockHeaderDocument>('BlockHeader', headerSchema)
  );
}

export function chainTipModel(connection: Connection): Model<ChainTipDocument> {
  return (connection.models.ChainTip as Model<ChainTipDocument> | undefined) ?? connection.model<ChainTipDocument>('ChainTip', tipSchema);
}

export function anchorTxModel(connection: Connection): Model<AnchorTxDocument> {
  return (
    (connection.models.AnchorTx as Model<AnchorTxDocument> | undefined) ?? connection.model<AnchorTxDocument>('AnchorTx', anchorTxSchema)
  );
}

export function registerChainFollowerModels(connection: Connection): void {
  blockHeaderModel(connection);
  chainTipModel(connection);
  anchorTxModel(connection);
}

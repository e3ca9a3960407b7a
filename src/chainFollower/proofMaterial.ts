import type { Connection } from 'mongoose';
import { anchorBeefHex, bumpFromTscProof } from '../chain/beef';
import { blockHashOf, serializeBlockHeader } from '../chain/blockHeader';
import { anchorTxModel, blockHeaderModel, headerId, type BlockHeaderDocument, type ChainNetwork } from './models';

/**
 * The whole 80-byte header of a stored block, or null when the follower stored it without version, bits and nonce
 * (before it kept them) or the fields do not hash to the stored block hash.
 */
export function storedHeaderBytes(
  header: Pick<BlockHeaderDocument, 'hash' | 'prevHash' | 'merkleRoot' | 'time' | 'version' | 'bits' | 'nonce'>,
): Buffer | null {
  const { version, bits, nonce } = header;
  if (version === null || version === undefined || bits === null || bits === undefined || nonce === null || nonce === undefined) {
    return null;
  }
  const bytes = serializeBlockHeader({ version, bits, nonce, prevHash: header.prevHash, merkleRoot: header.merkleRoot, time: header.time });
  return blockHashOf(bytes) === header.hash ? bytes : null;
}

/** What a version 2 proof bundle carries for one anchor tx (docs/PROOFS.md). */
export interface AnchorChainMaterial {
  blockHeight: number;
  /** Atomic BEEF (BRC-95) of the tx and its BUMP, hex. */
  beef: string;
  /** The 80-byte header of the block holding the tx, hex. */
  blockHeader: string;
}

/**
 * The BEEF and block header of an anchor tx the chain follower has proven, from MongoDB alone (no chain request):
 * its stored bytes, its TSC proof turned into a BUMP, and its block's stored header. Null while the tx is unproven,
 * or its bytes or whole header are not stored yet (the follower completes them).
 */
export async function anchorChainMaterial(mongo: Connection, network: ChainNetwork, txid: string): Promise<AnchorChainMaterial | null> {
  const tx = await anchorTxModel(mongo).findById(txid).lean();
  if (!tx || tx.network !== network || tx.state !== 'proven' || tx.blockHeight === null || !tx.proof || !tx.rawHex) return null;
  const header = await blockHeaderModel(mongo).findById(headerId(network, tx.blockHeight)).lean();
  if (!header || header.hash !== tx.blockHash) return null;
  const headerBytes = storedHeaderBytes(header);
  if (!headerBytes) return null;
  return {
    blockHeight: tx.blockHeight,
    beef: anchorBeefHex(tx.rawHex, bumpFromTscProof(txid, tx.proof, tx.blockHeight)),
    blockHeader: headerBytes.toString('hex'),
  };
}

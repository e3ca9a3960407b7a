import { Beef, BEEF_V1, MerklePath, Transaction } from '@bsv/sdk';
import type { TscProof } from '../woc/tscProof';

/**
 * A mined anchor tx as proof bundles carry it (docs/PROOFS.md, "The anchor transaction in BEEF"): Atomic BEEF
 * (BRC-95) around a version 1 BEEF (BRC-62) holding exactly one BUMP (BRC-74) and the tx itself, proven by that
 * BUMP. A mined tx needs no ancestors: its BUMP is its proof. Pure, no I/O; built and read with `@bsv/sdk`.
 */

/** The BUMP of one tx from its TSC proof: the tx and its sibling at level 0, then one node per level (`*`: duplicate). */
export function bumpFromTscProof(txid: string, proof: Pick<TscProof, 'index' | 'nodes'>, blockHeight: number): MerklePath {
  if (proof.nodes.length === 0) return new MerklePath(blockHeight, [[{ offset: 0, hash: txid, txid: true }]]);
  const sibling = (level: number, node: string) => {
    const offset = (proof.index >> level) ^ 1;
    return node === '*' ? { offset, duplicate: true } : { offset, hash: node };
  };
  const path = proof.nodes.map((node, level) =>
    level === 0
      ? [{ offset: proof.index, hash: txid, txid: true }, sibling(0, node)].sort((a, b) => a.offset - b.offset)
      : [sibling(level, node)],
  );
  return new MerklePath(blockHeight, path);
}

/**
 * The Atomic BEEF (hex) of a mined tx from its bytes and its BUMP. Merged as a parsed Transaction: in @bsv/sdk 2.1.0
 * a BeefTx made from raw bytes (`mergeRawTx`) reports its txid byte-reversed, so the Atomic BEEF would name the
 * wrong subject.
 */
export function anchorBeefHex(rawHex: string, bump: MerklePath): string {
  const tx = Transaction.fromHex(rawHex);
  tx.merklePath = bump;
  const beef = new Beef(BEEF_V1);
  beef.mergeTransaction(tx);
  return Buffer.from(beef.toBinaryAtomic(tx.id('hex'))).toString('hex');
}

export type AnchorBeefReading = { ok: true; tx: Transaction; bump: MerklePath; merkleRoot: string } | { ok: false; reason: string };

/**
 * Reads a bundle's BEEF for `txid` and checks its shape: Atomic BEEF naming `txid`, BEEF version 1, one BUMP, one
 * tx whose bytes hash to `txid` and that names BUMP 0, the BUMP flags `txid` at level 0, and the bytes are exactly
 * the canonical encoding (no trailing or re-encoded data). Returns the merkle root the BUMP leads to from `txid`.
 */
export function readAnchorBeef(hex: unknown, txid: string): AnchorBeefReading {
  const no = (reason: string): AnchorBeefReading => ({ ok: false, reason: `the anchor BEEF ${reason}` });
  if (typeof hex !== 'string' || !/^([0-9a-f]{2})+$/.test(hex)) return no('is not lower-case hex');
  let beef: Beef;
  try {
    beef = Beef.fromString(hex, 'hex');
  } catch (err) {
    return no(`does not parse (${(err as Error).message})`);
  }
  if (beef.atomicTxid === undefined) return no('is not Atomic BEEF (BRC-95)');
  if (beef.atomicTxid !== txid) return no(`is about ${beef.atomicTxid}, not the anchor transaction ${txid}`);
  if (beef.version !== BEEF_V1) return no('is not BEEF version 1 (BRC-62)');
  if (beef.bumps.length !== 1 || beef.txs.length !== 1) return no('must hold exactly one BUMP and one transaction');
  const [beefTx] = beef.txs;
  if (beefTx!.txid !== txid) return no(`holds a transaction that hashes to ${beefTx!.txid}, not ${txid}`);
  if (beefTx!.bumpIndex !== 0) return no('holds a transaction without its BUMP');
  const bump = beef.bumps[0]!;
  if (!bump.path[0]?.some((leaf) => leaf.txid === true && leaf.hash === txid)) return no('has a BUMP that does not name the transaction');
  let reencoded: string;
  try {
    reencoded = Buffer.from(beef.toBinaryAtomic(txid)).toString('hex');
  } catch (err) {
    return no(`does not re-encode (${(err as Error).message})`);
  }
  if (reencoded !== hex) return no('is not in canonical form (trailing or re-encoded bytes)');
  let merkleRoot: string;
  try {
    merkleRoot = bump.computeRoot(txid);
  } catch (err) {
    return no(`has a BUMP that leads nowhere (${(err as Error).message})`);
  }
  let tx: Transaction;
  try {
    tx = Transaction.fromBinary(beefTx!.rawTx!);
  } catch (err) {
    return no(`holds a transaction that does not parse (${(err as Error).message})`);
  }
  return { ok: true, tx, bump, merkleRoot };
}

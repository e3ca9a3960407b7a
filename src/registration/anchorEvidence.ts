import { readAnchorBeef } from '../chain/beef';
import { blockHashOf, meetsProofOfWork, parseBlockHeader } from '../chain/blockHeader';
import type { HeaderSource } from '../chain/headerSources';
import type { WocClient, WocTx } from '../woc/client';

/**
 * What a verifier knows about an anchor transaction: where it is, and which checks that rests on. A bundle of
 * format 1 learns it from a chain service; a bundle of format 2 carries the tx (BEEF with its BUMP) and the block
 * header itself, and needs a header source only to know that header is the chain's.
 */
export type AnchorEvidence =
  /** In a block of the chain: `checked` says how that was established. */
  | { kind: 'in-block'; tx: WocTx; checked: string[] }
  /** In no block the verifier knows (not yet mined, or unknown): pending. */
  | { kind: 'not-found' }
  /** The evidence contradicts itself or the chain: the bundle is invalid. */
  | { kind: 'invalid'; reason: string }
  /** Self-consistent, but not matched against a chain (no header source, or one that does not reach the block). */
  | { kind: 'unchecked'; tx: WocTx; checked: string[]; unchecked: string };

export interface AnchorLocation {
  txid: string;
  vout: number;
  blockHeight: number | null;
  beef?: string;
  blockHeader?: string;
}

export interface AnchorWitness {
  evidence(anchor: AnchorLocation): Promise<AnchorEvidence>;
}

/** Format 1: one lookup of the tx on a chain service (or the chain follower's local copy of it). */
export function chainServiceWitness(woc: Pick<WocClient, 'getTx'>, describe = 'the chain service'): AnchorWitness {
  return {
    async evidence(anchor) {
      const tx = await woc.getTx(anchor.txid);
      if (!tx || tx.confirmations < 1) return { kind: 'not-found' };
      return { kind: 'in-block', tx, checked: [`anchor transaction ${anchor.txid} read from ${describe}`] };
    },
  };
}

const HEX = /^([0-9a-f]{2})+$/;

/**
 * Format 2: the anchor tx and its block from the bundle alone (docs/PROOFS.md, "Verifying a bundle of format 2"):
 * the BEEF's tx hashes to the txid, its BUMP leads from the txid to the header's merkle root at the bundle's height,
 * and the header has valid proof of work. Then, when a header source is given, that header must be the source's
 * block at that height: a different block there is invalid (a reorg replaced it, or the header was forged).
 */
export function bundledWitness(headers: HeaderSource | undefined): AnchorWitness {
  return {
    async evidence(anchor) {
      const invalid = (reason: string): AnchorEvidence => ({ kind: 'invalid', reason });
      if (anchor.beef === undefined || anchor.blockHeader === undefined) return invalid('the anchor carries no BEEF or no block header');
      const beef = readAnchorBeef(anchor.beef, anchor.txid);
      if (!beef.ok) return invalid(beef.reason);
      if (anchor.blockHeight !== beef.bump.blockHeight) {
        return invalid(`the BUMP is for block ${beef.bump.blockHeight}, the anchor says ${String(anchor.blockHeight)}`);
      }
      if (typeof anchor.blockHeader !== 'string' || !HEX.test(anchor.blockHeader)) return invalid('the block header is not lower-case hex');
      const headerBytes = Buffer.from(anchor.blockHeader, 'hex');
      const header = parseBlockHeader(headerBytes);
      if (!header) return invalid('the block header is not 80 bytes');
      if (header.merkleRoot !== beef.merkleRoot) {
        return invalid(`the BUMP does not lead to the block header's merkle root (it leads to ${beef.merkleRoot})`);
      }
      if (!meetsProofOfWork(headerBytes)) return invalid('the block header does not meet the proof of work its bits require');
      const blockHash = blockHashOf(headerBytes);
      const height = beef.bump.blockHeight;
      const tx: WocTx = {
        txid: anchor.txid,
        size: beef.tx.toBinary().length,
        confirmations: 0,
        blockHash,
        blockHeight: height,
        blockTime: header.time,
        outputs: beef.tx.outputs.map((o, vout) => ({ vout, satoshis: o.satoshis ?? 0, scriptHex: o.lockingScript.toHex() })),
      };
      const checked = [
        `anchor transaction ${anchor.txid}: BEEF bytes hash to the txid, its BUMP leads to the merkle root of block ${blockHash} at height ${height}, whose header has valid proof of work`,
      ];
      if (!headers) {
        return {
          kind: 'unchecked',
          tx,
          checked,
          unchecked: `that block ${blockHash} is the chain's block at height ${height}: no headers given`,
        };
      }
      const chainHeader = await headers.headerAt(height);
      if (!chainHeader) {
        const tip = await headers.tipHeight();
        const reach = tip === null ? 'has no headers' : `ends at height ${tip}`;
        return {
          kind: 'unchecked',
          tx,
          checked,
          unchecked: `that block ${blockHash} is the chain's block at height ${height}: ${headers.name} ${reach}`,
        };
      }
      if (chainHeader.hash.toLowerCase() !== blockHash || chainHeader.merkleRoot.toLowerCase() !== header.merkleRoot) {
        return invalid(
          `the block header is not the chain's block at height ${height} (${headers.name} has ${chainHeader.hash.toLowerCase()}): ` +
            'a reorg may have moved the anchor transaction, or the header is forged; fetch the bundle again',
        );
      }
      tx.confirmations = chainHeader.confirmations;
      return { kind: 'in-block', tx, checked: [...checked, `block ${blockHash} is the block at height ${height} in ${headers.name}`] };
    },
  };
}

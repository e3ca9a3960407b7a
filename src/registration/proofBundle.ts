import { PublicKey } from '@bsv/sdk';
import { parseAnchorScript } from '../anchoring/anchorScript';
import { canonicalHash } from '../anchoring/canonical';
import { verifyMerkleProof, type MerkleProof } from '../anchoring/merkle';
import { isLowS, parseDerSignature, verifyDigestSignature } from '../chain/ecdsa';
import type { WocClient } from '../woc/client';

export const PROOF_BUNDLE_FORMAT = 'patchproof-proof/1';

/** Everything needed to check a registration without our database: only a chain lookup of the anchor tx. */
export interface ProofBundle {
  format: typeof PROOF_BUNDLE_FORMAT;
  network: 'main' | 'test';
  uid: string;
  record: Record<string, unknown>;
  recordHash: string;
  issuerSignature: { signatureDerHex: string; pubKeyHex: string; keyIdentifier: string };
  anchor: MerkleProof & { txid: string; vout: number; blockHeight: number | null };
}

export type BundleVerdict =
  | { status: 'authentic'; confirmations: number; blockHeight: number | null }
  | { status: 'pending'; reason: string; confirmations: number }
  | { status: 'invalid'; reason: string };

/** The issuer signature is low-S and verifies over the record digest with the bundle's issuer key. */
export function issuerSignatureVerifies(bundle: Pick<ProofBundle, 'recordHash' | 'issuerSignature'>): boolean {
  const signature = parseDerSignature(bundle.issuerSignature.signatureDerHex);
  let issuerKey: PublicKey;
  try {
    issuerKey = PublicKey.fromString(bundle.issuerSignature.pubKeyHex);
  } catch {
    return false;
  }
  return signature !== null && isLowS(signature) && verifyDigestSignature([...Buffer.from(bundle.recordHash, 'hex')], signature, issuerKey);
}

/**
 * Checks a bundle from its parts: the record hashes to the signed digest, the signature (low-S) verifies with the
 * bundle's issuer key (and that key is the expected one, when given), the Merkle proof leads to the root, and the
 * anchor output on chain commits to that root and count. Chain errors propagate: they are not a verdict.
 */
export async function checkProofBundle(
  bundle: ProofBundle,
  deps: { woc: Pick<WocClient, 'getTx'>; requiredConfirmations: number; expectedIssuerPubKeyHex?: string },
): Promise<BundleVerdict> {
  const invalid = (reason: string): BundleVerdict => ({ status: 'invalid', reason });
  if (bundle.format !== PROOF_BUNDLE_FORMAT) return invalid(`unknown bundle format ${String(bundle.format)}`);
  if (canonicalHash(bundle.record as never) !== bundle.recordHash) return invalid('the record no longer hashes to the signed digest');
  if (deps.expectedIssuerPubKeyHex && deps.expectedIssuerPubKeyHex !== bundle.issuerSignature.pubKeyHex) {
    return invalid('signed by a key other than the issuer key');
  }
  if (!issuerSignatureVerifies(bundle)) return invalid('the issuer signature does not verify');
  if (!verifyMerkleProof(bundle.recordHash, bundle.anchor)) return invalid('the Merkle proof does not lead from the record to its root');
  const tx = await deps.woc.getTx(bundle.anchor.txid);
  if (!tx) return { status: 'pending', reason: `anchor transaction ${bundle.anchor.txid} is not known to the chain yet`, confirmations: 0 };
  const output = tx.outputs.find((o) => o.vout === bundle.anchor.vout);
  const anchored = output ? parseAnchorScript(output.scriptHex) : null;
  if (!anchored || anchored.root !== bundle.anchor.root || anchored.count !== bundle.anchor.count) {
    return invalid(`output ${bundle.anchor.vout} of ${bundle.anchor.txid} does not commit to the proof's root`);
  }
  if (tx.confirmations < deps.requiredConfirmations) {
    return {
      status: 'pending',
      reason: `anchor has ${tx.confirmations} of ${deps.requiredConfirmations} confirmations`,
      confirmations: tx.confirmations,
    };
  }
  return { status: 'authentic', confirmations: tx.confirmations, blockHeight: tx.blockHeight ?? null };
}

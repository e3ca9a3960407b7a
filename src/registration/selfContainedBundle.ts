import type { Connection } from 'mongoose';
import { anchorChainMaterial, type AnchorChainMaterial } from '../chainFollower/proofMaterial';
import { PROOF_BUNDLE_FORMAT_V2, type AnchoredRecordProof, type ProofBundle } from './proofBundle';
import { patchModel } from './models';
import { anchoredTransfers, loadProofBundle } from './verify';

/**
 * The format 2 bundle of a format 1 bundle: each anchor (the registration's and every transfer's) gets its tx in
 * BEEF with its BUMP and its block header, all from the chain follower's store, with no chain request. Null while
 * any anchor tx is not proven with its bytes and whole header stored yet: the caller serves format 1 meanwhile.
 */
export async function selfContainedBundle(mongo: Connection, bundle: ProofBundle): Promise<ProofBundle | null> {
  const parts: AnchoredRecordProof[] = [bundle, ...(bundle.transfers ?? [])];
  const material = new Map<string, AnchorChainMaterial | null>();
  for (const part of parts) {
    const txid = part.anchor.txid;
    if (!material.has(txid)) material.set(txid, await anchorChainMaterial(mongo, bundle.network, txid));
    if (!material.get(txid)) return null;
  }
  const withMaterial = <T extends AnchoredRecordProof>(part: T): T => {
    const { blockHeight, beef, blockHeader } = material.get(part.anchor.txid)!;
    return { ...part, anchor: { ...part.anchor, blockHeight, beef, blockHeader } };
  };
  return {
    ...withMaterial(bundle),
    format: PROOF_BUNDLE_FORMAT_V2,
    transfers: (bundle.transfers ?? []).map(withMaterial),
  };
}

/**
 * The bundle `GET /v1/patches/:uid/proof` serves: format 2 when every anchor is proven locally, otherwise (or when
 * asked for format 1) format 1. Null while the patch has no anchored registration. MongoDB only.
 */
export async function servedProofBundle(
  mongo: Connection,
  network: 'main' | 'test',
  uid: string,
  format: '1' | '2' = '2',
): Promise<ProofBundle | null> {
  const patch = await patchModel(mongo).findById(uid).lean();
  const bundle = patch && (await loadProofBundle(mongo, patch, network, await anchoredTransfers(mongo, uid)));
  if (!bundle || format === '1') return bundle;
  return (await selfContainedBundle(mongo, bundle)) ?? bundle;
}

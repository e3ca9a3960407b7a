import type { Connection } from 'mongoose';
import type { MerkleProof } from '../anchoring/merkle';
import type { KmsClient } from '../kms/client';
import { issuerKeyPolicy, loadKeyDirectory } from '../issuerKeys/directory';
import type { Keyring } from '../rotation/keyring';
import type { WocClient } from '../woc/client';
import { localChainLookup, type ChainSource, type LocalTip } from '../chainFollower/localChain';
import { bulkRecordProof } from '../bulkRegistration/proofs';
import { patchModel, type PatchDocument } from './models';
import { transferModel, type TransferDocument } from '../transfer/models';
import {
  checkProofBundle,
  issuerSignatureVerifies,
  PROOF_BUNDLE_FORMAT,
  type AnchoredRecordProof,
  type ProofBundle,
  type RevokedKeyFinding,
} from './proofBundle';

export type VerificationStatus = 'authentic' | 'pending' | 'not_found' | 'invalid' | 'revoked-key';

export interface OwnershipLink {
  kind: 'registration' | 'transfer';
  seq: number;
  owner: string;
  txid: string | null;
  recordHash?: string;
  record?: Record<string, unknown>;
  anchor?: MerkleProof & { txid: string; vout: number; blockHeight: number | null; confirmations?: number };
}

export interface Verification {
  uid: string;
  status: VerificationStatus;
  reason?: string;
  record?: Record<string, unknown>;
  recordHash?: string;
  issuerSignature?: { valid: boolean; keyIdentifier: string; pubKeyHex: string; signatureDerHex: string };
  ownership?: { currentOwner: string; chain: OwnershipLink[]; pendingTransfer?: string };
  anchor?: MerkleProof & { txid: string; vout: number; blockHeight: number | null; confirmations: number };
  /** A bulk-registered patch: the tree head the issuer signed and the record's path to its root; `anchor` starts there. */
  signedTreeHead?: AnchoredRecordProof['signedTreeHead'];
  /** `revoked-key`: the revoked key, which record it signed (0 registration, n transfer) and the evidence weighed. */
  revokedKey?: RevokedKeyFinding;
  /** The chain state the confirmations are counted from: the chain follower's local tip. */
  chain?: ChainView;
}

export interface ChainView {
  /** `local`: headers and proofs in MongoDB only; `chain-service`: an anchor tx the follower did not know yet was looked up. */
  source: ChainSource;
  tipHeight: number | null;
  tipHash: string | null;
  /** Block time of the local tip (ISO 8601). */
  tipTime: string | null;
  /**
   * Seconds since the follower last confirmed its tip with the chain service, in steps of CHAIN_TIP_AGE_STEP_SEC so
   * the answer (and its ETag) stays the same for a cache's max-age. Large while the chain service is down.
   */
  chainTipAge: number | null;
}

/** Granularity of `chainTipAge`, equal to the verify answer's max-age. */
export const CHAIN_TIP_AGE_STEP_SEC = 10;

function chainView(tip: LocalTip | null, source: ChainSource, now: number): ChainView {
  if (!tip) return { source, tipHeight: null, tipHash: null, tipTime: null, chainTipAge: null };
  const age = Math.max(0, (now - tip.syncedAt.getTime()) / 1000);
  return {
    source,
    tipHeight: tip.height,
    tipHash: tip.hash,
    tipTime: new Date(tip.time * 1000).toISOString(),
    chainTipAge: Math.floor(age / CHAIN_TIP_AGE_STEP_SEC) * CHAIN_TIP_AGE_STEP_SEC,
  };
}

export interface VerifyDeps {
  mongo: Connection;
  kms: KmsClient;
  /** Asked only about an anchor tx the chain follower has never been told of (see localChainLookup). */
  woc: Pick<WocClient, 'getTx'>;
  network: 'main' | 'test';
  requiredConfirmations: number;
  /** Key settings, from which the issuer key directory is built (src/issuerKeys/directory.ts). */
  keys: Pick<Keyring, 'activeKeyId' | 'snapshot'>;
}

/** The anchored transfers of a patch, in order: its ownership chain after the registration. */
export function anchoredTransfers(mongo: Connection, uid: string): Promise<TransferDocument[]> {
  return transferModel(mongo).find({ uid, status: 'anchored' }).sort({ seq: 1 }).lean();
}

function transferProof(transfer: TransferDocument): AnchoredRecordProof {
  return {
    record: transfer.record,
    recordHash: transfer.recordHash,
    issuerSignature: transfer.issuerSignature!,
    anchor: {
      ...transfer.anchor!.proof,
      txid: transfer.anchor!.txid,
      vout: transfer.anchor!.vout,
      blockHeight: transfer.anchor!.blockHeight,
    },
  };
}

/**
 * The self-contained proof of an anchored patch and its anchored transfers, or null while it has none. A
 * bulk-registered patch's signature and inclusion path come from its chunk (src/bulkRegistration/proofs.ts).
 */
export async function loadProofBundle(
  mongo: Connection,
  patch: PatchDocument,
  network: 'main' | 'test',
  transfers: TransferDocument[] = [],
): Promise<ProofBundle | null> {
  if (patch.status !== 'anchored' || !patch.anchor) return null;
  let signed: Pick<AnchoredRecordProof, 'signedTreeHead' | 'issuerSignature' | 'anchor'> | null;
  if (patch.batchId) {
    signed = await bulkRecordProof(mongo, patch);
  } else {
    const { proof, ...anchor } = patch.anchor;
    signed = patch.issuerSignature && proof ? { issuerSignature: patch.issuerSignature, anchor: { ...proof, ...anchor } } : null;
  }
  if (!signed) return null;
  return {
    format: PROOF_BUNDLE_FORMAT,
    network,
    uid: patch._id,
    record: patch.record,
    recordHash: patch.recordHash,
    ...signed,
    anchor: { ...signed.anchor, blockHeight: patch.anchor.blockHeight ?? signed.anchor.blockHeight },
    transfers: transfers.map(transferProof),
  };
}

/**
 * Verifies a patch from its parts rather than trusting a stored flag, with the same checks as an offline proof
 * bundle (proofBundle.ts) against the issuer key directory: each record is signed by an issuer key, by a revoked
 * one only when it provably predates the revocation (`revoked-key` otherwise). The ownership chain is
 * the registration and every anchored transfer, each checked as a link; a transfer still being anchored is named
 * but does not change the verdict.
 */
export async function verifyPatch(deps: VerifyDeps, uid: string): Promise<Verification> {
  // One read of the patch's transfers, split here: each query is a scan on the embedded FerretDB.
  const [patch, transfersOfPatch] = await Promise.all([
    patchModel(deps.mongo).findById(uid).lean(),
    transferModel(deps.mongo).find({ uid }).sort({ seq: 1 }).lean(),
  ]);
  if (!patch) return { uid, status: 'not_found' };
  const transfers = transfersOfPatch.filter((t) => t.status === 'anchored');
  const pendingTransfer = transfersOfPatch.find((t) => t.status === 'pending' || t.status === 'anchoring');
  const initialOwner = String(patch.record.initialOwner);
  const chain: OwnershipLink[] = [
    { kind: 'registration', seq: 0, owner: initialOwner, txid: patch.anchor?.txid ?? null },
    ...transfers.map((t) => ({ kind: 'transfer' as const, seq: t.seq, owner: String(t.record.to), ...linkOf(transferProof(t)) })),
  ];
  const base: Verification = {
    uid,
    status: 'pending',
    record: patch.record,
    recordHash: patch.recordHash,
    ownership: { currentOwner: patch.owner, chain, ...(pendingTransfer && { pendingTransfer: pendingTransfer._id }) },
  };
  if (patch.status === 'failed')
    return { ...base, status: 'invalid', reason: `registration failed: ${patch.lastError ?? 'unknown reason'}` };
  const bundle = await loadProofBundle(deps.mongo, patch, deps.network, transfers);
  if (!bundle) return { ...base, reason: `registration is ${patch.status}` };

  // Registration and transfers may each have been signed by a different issuer key across rotations; the directory
  // holds every one, and the time after which a revoked one no longer counts.
  const issuerKeys = issuerKeyPolicy(await loadKeyDirectory({ keys: deps.keys, kms: deps.kms }));
  const local = await localChainLookup({ mongo: deps.mongo, network: deps.network, woc: deps.woc });
  const verdict = await checkProofBundle(bundle, { woc: local, requiredConfirmations: deps.requiredConfirmations, issuerKeys });
  base.chain = chainView(local.tip, local.source(), Date.now());
  base.issuerSignature = {
    ...bundle.issuerSignature,
    valid: issuerKeys.accepted.has(bundle.issuerSignature.pubKeyHex) && issuerSignatureVerifies(bundle),
  };
  if (verdict.status === 'invalid') return { ...base, status: 'invalid', reason: verdict.reason };
  if (verdict.status === 'revoked-key') return { ...base, status: 'revoked-key', reason: verdict.reason, revokedKey: verdict.revokedKey };
  // The local check looks every anchor up (format 1), so it never lacks a chain; were it to, it is not authentic.
  if (verdict.status === 'incomplete') return { ...base, status: 'pending', reason: `not checked: ${verdict.unchecked.join('; ')}` };
  if (bundle.signedTreeHead) base.signedTreeHead = bundle.signedTreeHead;
  base.anchor = {
    ...bundle.anchor,
    confirmations: verdict.confirmations,
    blockHeight: verdict.status === 'authentic' ? verdict.blockHeight : bundle.anchor.blockHeight,
  };
  if (verdict.status === 'pending') return { ...base, status: 'pending', reason: verdict.reason };
  if (verdict.currentOwner !== patch.owner)
    return { ...base, status: 'invalid', reason: 'the stored owner is not the owner the chain of records proves' };
  for (const link of verdict.links) {
    const entry = chain[link.seq];
    if (entry?.anchor) entry.anchor = { ...entry.anchor, confirmations: link.confirmations, blockHeight: link.blockHeight };
  }
  return { ...base, status: 'authentic' };
}

function linkOf(proof: AnchoredRecordProof): Omit<OwnershipLink, 'kind' | 'seq' | 'owner'> {
  return { txid: proof.anchor.txid, recordHash: proof.recordHash, record: proof.record, anchor: proof.anchor };
}

/**
 * A verification computed earlier, brought up to the local tip: confirmations and `chain` are the only parts that
 * move with new blocks, so a kept settled verdict is refreshed here without reading the patch again. Answers that
 * needed the chain service are returned as they are.
 */
export function withLocalTip(verification: Verification, tip: LocalTip | null, now: number): Verification {
  if (!tip || verification.chain?.source !== 'local') return verification;
  const confirmationsOf = <A extends { blockHeight: number | null; confirmations?: number }>(anchor: A): A =>
    anchor.blockHeight === null ? anchor : { ...anchor, confirmations: Math.max(0, tip.height - anchor.blockHeight + 1) };
  return {
    ...verification,
    chain: chainView(tip, 'local', now),
    ...(verification.anchor && { anchor: confirmationsOf(verification.anchor) }),
    ...(verification.ownership && {
      ownership: {
        ...verification.ownership,
        chain: verification.ownership.chain.map((link) => (link.anchor ? { ...link, anchor: confirmationsOf(link.anchor) } : link)),
      },
    }),
  };
}

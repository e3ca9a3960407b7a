import { PublicKey } from '@bsv/sdk';
import { parseAnchorScript } from '../anchoring/anchorScript';
import { canonicalHash } from '../anchoring/canonical';
import { verifyMerkleProof, type MerkleProof } from '../anchoring/merkle';
import { treeHeadHash, type TreeHead } from '../anchoring/treeHead';
import type { Network } from '../chain/addresses';
import { isLowS, parseDerSignature, verifyDigestSignature } from '../chain/ecdsa';
import type { IssuerKeyPolicy, KeyRevocation } from '../issuerKeys/directory';
import { checkOwnerSignature, type OwnerMessage } from '../ownership/messages';
import type { HeaderSource } from '../chain/headerSources';
import type { WocClient } from '../woc/client';
import { bundledWitness, chainServiceWitness, type AnchorWitness } from './anchorEvidence';

/** Format 1: the anchor tx is looked up on a chain service. Still served on request, and still verified. */
export const PROOF_BUNDLE_FORMAT = 'patchproof-proof/1';
/** Format 2, self-contained: each anchor also carries its tx in BEEF (with its BUMP) and its block header. */
export const PROOF_BUNDLE_FORMAT_V2 = 'patchproof-proof/2';
export type ProofBundleFormat = typeof PROOF_BUNDLE_FORMAT | typeof PROOF_BUNDLE_FORMAT_V2;

/**
 * One signed, anchored record: the registration, or a transfer. The issuer signs either the record hash itself, or
 * (bulk registration) a tree head whose root the record is included under; what the issuer signed is what the
 * anchor commits to.
 */
export interface AnchoredRecordProof {
  record: Record<string, unknown>;
  recordHash: string;
  /** Present when the issuer signed a tree head over many records rather than this record alone. */
  signedTreeHead?: { treeHead: TreeHead; inclusion: MerkleProof };
  issuerSignature: { signatureDerHex: string; pubKeyHex: string; keyIdentifier: string };
  /**
   * The path from the signed digest (record hash or tree head hash) to the anchored root. Format 2 adds `beef`
   * (Atomic BEEF of the anchor tx with its BUMP, hex) and `blockHeader` (the 80-byte header of its block, hex).
   */
  anchor: MerkleProof & { txid: string; vout: number; blockHeight: number | null; beef?: string; blockHeader?: string };
}

/**
 * Everything needed to check a patch without our database, using only a chain lookup of each anchor tx: the
 * registration, and each anchored transfer in order (the ownership chain).
 */
export interface ProofBundle extends AnchoredRecordProof {
  format: ProofBundleFormat;
  network: Network;
  uid: string;
  transfers?: AnchoredRecordProof[];
}

export type BundleVerdict =
  | {
      status: 'authentic';
      confirmations: number;
      blockHeight: number | null;
      currentOwner: string;
      links: LinkVerdict[];
      /** What was established, one line per anchor: how its transaction is known to be in the chain. */
      checked: string[];
    }
  /** Every check made passed, but some could not be made (format 2 without headers): not authentic, not invalid. */
  | { status: 'incomplete'; blockHeight: number | null; currentOwner: string; links: LinkVerdict[]; checked: string[]; unchecked: string[] }
  | { status: 'pending'; reason: string; confirmations: number }
  | { status: 'invalid'; reason: string }
  | { status: 'revoked-key'; reason: string; revokedKey: RevokedKeyFinding };

/** A record whose issuer key was revoked and that cannot be shown to have been signed before the revocation. */
export interface RevokedKeyFinding extends KeyRevocation {
  publicKey: string;
  /** 0: the registration; n: the n-th transfer. */
  seq: number;
  /** The time the signed record states for itself, and the block time of its anchor (the evidence weighed). */
  claimedAt: string | null;
  anchoredAt: string | null;
}

export interface LinkVerdict {
  seq: number;
  confirmations: number;
  blockHeight: number | null;
}

type PartVerdict =
  | { ok: true; confirmations: number | null; blockHeight: number | null; checked: string[]; unchecked: string | null }
  | { ok: false; pending: boolean; reason: string; confirmations: number; revokedKey?: Omit<RevokedKeyFinding, 'seq'> };

/**
 * The digest the issuer signed: the record hash, or the hash of the tree head the record is included under. Null
 * when the inclusion proof does not lead from the record to that tree head's root, or the tree head is malformed.
 */
export function signedDigest(part: Pick<AnchoredRecordProof, 'recordHash' | 'signedTreeHead'>): string | null {
  const signed = part.signedTreeHead;
  if (!signed) return part.recordHash;
  const head = signed.treeHead;
  if (head.kind !== 'patchproof.tree-head' || head.v !== 1 || head.root !== signed.inclusion.root || head.size !== signed.inclusion.count) {
    return null;
  }
  if (!verifyMerkleProof(part.recordHash, signed.inclusion)) return null;
  try {
    return treeHeadHash(head);
  } catch {
    return null;
  }
}

/**
 * Outcomes of signature checks already made, by digest, signature and key: a check is a pure function taking ~12 ms
 * in JavaScript, and the same signatures are checked on every tap (one tree head signs a whole bulk chunk).
 */
const CHECKED_SIGNATURES = 50_000;
const checkedSignatures = new Map<string, boolean>();

/** The issuer signature is low-S and verifies over the signed digest with the bundle's issuer key. */
export function issuerSignatureVerifies(part: Pick<AnchoredRecordProof, 'recordHash' | 'signedTreeHead' | 'issuerSignature'>): boolean {
  const digest = signedDigest(part);
  if (digest === null) return false;
  const key = `${digest}:${part.issuerSignature.signatureDerHex}:${part.issuerSignature.pubKeyHex}`;
  let valid = checkedSignatures.get(key);
  if (valid === undefined) {
    valid = signatureVerifies(digest, part.issuerSignature);
    if (checkedSignatures.size >= CHECKED_SIGNATURES) checkedSignatures.delete(checkedSignatures.keys().next().value!);
    checkedSignatures.set(key, valid);
  }
  return valid;
}

function signatureVerifies(digest: string, issuerSignature: AnchoredRecordProof['issuerSignature']): boolean {
  const signature = parseDerSignature(issuerSignature.signatureDerHex);
  let issuerKey: PublicKey;
  try {
    issuerKey = PublicKey.fromString(issuerSignature.pubKeyHex);
  } catch {
    return false;
  }
  return signature !== null && isLowS(signature) && verifyDigestSignature([...Buffer.from(digest, 'hex')], signature, issuerKey);
}

interface CheckDeps {
  /** Format 1: where anchor txs are looked up (a chain service, or the chain follower's local copy). */
  woc?: Pick<WocClient, 'getTx'>;
  /**
   * Format 2: which block is the chain's at a height (a headers file, or a chain service). Without it, everything
   * in the bundle is checked but not that its block is on the chain: the verdict is `incomplete`.
   */
  headers?: HeaderSource;
  requiredConfirmations: number;
  expectedIssuerPubKeyHex?: string;
  /**
   * The issuer key directory (src/issuerKeys): each record must be signed by one of its keys, and a revoked key
   * counts only for records that provably predate its revocation.
   */
  issuerKeys?: IssuerKeyPolicy;
}

/**
 * The latest time the signed material states for itself: a registration's `registeredAt`, a transfer's
 * `transferredAt`, a bulk tree head's `issuedAt`. Null when none is a readable time.
 */
export function claimedSigningTime(part: Pick<AnchoredRecordProof, 'record' | 'signedTreeHead'>): string | null {
  const stated = [part.record.registeredAt, part.record.transferredAt, part.signedTreeHead?.treeHead.issuedAt]
    .filter((t): t is string => typeof t === 'string' && !Number.isNaN(Date.parse(t)))
    .sort((a, b) => Date.parse(b) - Date.parse(a));
  return stated[0] ?? null;
}

/**
 * Whether a signature by a revoked key counts. The signer chooses the time a record states, so a thief of the key
 * can backdate it: a stated time at or after the revocation condemns the record, but one before it proves nothing
 * alone. The anchor's block is the witness the key cannot forge: the signed digest existed before that block, so
 * the record counts only when its block's time is also before the revocation. No block (not yet mined, or unknown
 * to the chain) is no evidence, and the record does not count.
 */
function revokedKeyVerdict(
  part: AnchoredRecordProof,
  revocation: KeyRevocation,
  claimedAt: string | null,
  blockTimeSec: number | null,
): PartVerdict | null {
  const revokedAtMs = Date.parse(revocation.revokedAt);
  const anchoredAt = blockTimeSec === null ? null : new Date(blockTimeSec * 1000).toISOString();
  const signedBy = `signed by issuer key ${revocation.kid}, revoked at ${revocation.revokedAt}`;
  let reason: string;
  if (claimedAt !== null && Date.parse(claimedAt) >= revokedAtMs) reason = `${signedBy}, and dated ${claimedAt}, after that`;
  else if (anchoredAt === null) reason = `${signedBy}, and not anchored in a block before that`;
  else if (blockTimeSec! * 1000 >= revokedAtMs) reason = `${signedBy}, and anchored only after that (block time ${anchoredAt})`;
  else return null;
  const revokedKey = { ...revocation, publicKey: part.issuerSignature.pubKeyHex, claimedAt, anchoredAt };
  return { ok: false, pending: false, reason, confirmations: 0, revokedKey };
}

/**
 * Checks one anchored record from its parts: it hashes to the signed digest, the issuer signature (low-S) verifies
 * (with the expected key, when given), the Merkle proof leads to the root, and the anchor output on chain commits
 * to that root and count. Chain errors propagate: they are not a verdict.
 */
async function checkAnchoredRecord(part: AnchoredRecordProof, deps: CheckDeps, witness: AnchorWitness): Promise<PartVerdict> {
  const invalid = (reason: string): PartVerdict => ({ ok: false, pending: false, reason, confirmations: 0 });
  if (canonicalHash(part.record as never) !== part.recordHash) return invalid('the record no longer hashes to the signed digest');
  if (deps.expectedIssuerPubKeyHex && deps.expectedIssuerPubKeyHex !== part.issuerSignature.pubKeyHex) {
    return invalid('signed by a key other than the issuer key');
  }
  if (deps.issuerKeys && !deps.issuerKeys.accepted.has(part.issuerSignature.pubKeyHex)) {
    return invalid('signed by a key other than the issuer key');
  }
  const digest = signedDigest(part);
  if (digest === null) return invalid('the inclusion proof does not lead from the record to the signed tree head');
  if (!issuerSignatureVerifies(part)) return invalid('the issuer signature does not verify');
  if (!verifyMerkleProof(digest, part.anchor)) return invalid('the Merkle proof does not lead from the record to its root');
  const revocation = deps.issuerKeys?.revoked.get(part.issuerSignature.pubKeyHex);
  const claimedAt = claimedSigningTime(part);
  // A record that dates itself after its key's revocation is refused without a chain lookup.
  if (revocation && claimedAt !== null && Date.parse(claimedAt) >= Date.parse(revocation.revokedAt)) {
    return revokedKeyVerdict(part, revocation, claimedAt, null)!;
  }
  const evidence = await witness.evidence(part.anchor);
  if (evidence.kind === 'invalid') return invalid(evidence.reason);
  if (evidence.kind === 'not-found') {
    const unanchored = revocation && revokedKeyVerdict(part, revocation, claimedAt, null);
    return (
      unanchored || {
        ok: false,
        pending: true,
        reason: `anchor transaction ${part.anchor.txid} is not yet in a block known to the verifier`,
        confirmations: 0,
      }
    );
  }
  const tx = evidence.tx;
  const output = tx.outputs.find((o) => o.vout === part.anchor.vout);
  const anchored = output ? parseAnchorScript(output.scriptHex) : null;
  if (!anchored || anchored.root !== part.anchor.root || anchored.count !== part.anchor.count) {
    return invalid(`output ${part.anchor.vout} of ${part.anchor.txid} does not commit to the proof's root`);
  }
  const inBlock = evidence.kind === 'unchecked' || tx.confirmations > 0;
  const afterRevocation = revocation && revokedKeyVerdict(part, revocation, claimedAt, inBlock ? (tx.blockTime ?? null) : null);
  if (afterRevocation) return afterRevocation;
  const blockHeight = tx.blockHeight ?? null;
  if (evidence.kind === 'unchecked') {
    return { ok: true, confirmations: null, blockHeight, checked: evidence.checked, unchecked: evidence.unchecked };
  }
  if (tx.confirmations < deps.requiredConfirmations) {
    return {
      ok: false,
      pending: true,
      reason: `anchor has ${tx.confirmations} of ${deps.requiredConfirmations} confirmations`,
      confirmations: tx.confirmations,
    };
  }
  return { ok: true, confirmations: tx.confirmations, blockHeight, checked: evidence.checked, unchecked: null };
}

/** How a bundle's anchors are known to be on the chain: by lookup (format 1), or from what it carries (format 2). */
function witnessFor(bundle: ProofBundle, deps: CheckDeps): AnchorWitness {
  if (bundle.format === PROOF_BUNDLE_FORMAT_V2) return bundledWitness(deps.headers);
  if (!deps.woc) throw new Error('a proof bundle of format 1 needs a chain service to look its anchor transactions up');
  return chainServiceWitness(deps.woc);
}

interface ChainHead {
  txid: string;
  recordHash: string;
  owner: string;
  seq: number;
}

/**
 * A transfer record links to the head before it (txid, record hash, sequence), moves ownership from that head's
 * owner, and carries an authorization whose signature verifies: the owner's over the transfer message, or, for a
 * point-of-sale claim, the customer's over the claim message. Returns the problem, or null.
 */
export function transferLinkProblem(record: Record<string, unknown>, head: ChainHead, uid: string, network: Network): string | null {
  const previous = record.previous as { txid?: unknown; recordHash?: unknown } | undefined;
  if (record.kind !== 'patchproof.transfer' || record.uid !== uid) return 'it is not a transfer of this patch';
  if (record.seq !== head.seq + 1) return `it is number ${String(record.seq)}, expected ${head.seq + 1}`;
  if (previous?.txid !== head.txid || previous.recordHash !== head.recordHash) return 'it does not link to the previous record';
  if (record.from !== head.owner) return 'it transfers from someone other than the owner at the time';
  const auth = record.authorization as Record<string, string> | undefined;
  const to = String(record.to);
  let check;
  if (auth?.kind === 'owner-signature') {
    const message: OwnerMessage = {
      purpose: 'patchproof.transfer',
      uid,
      headTxid: head.txid,
      newOwner: to,
      nonce: auth.nonce!,
      expiresAt: auth.expiresAt!,
    };
    check = checkOwnerSignature({
      message,
      pubKeyHex: auth.pubKeyHex!,
      signatureDerHex: auth.signatureDerHex!,
      expectedAddress: head.owner,
      network,
    });
  } else if (auth?.kind === 'pos-claim') {
    const message: OwnerMessage = { purpose: 'patchproof.claim', uid, address: to, nonce: auth.nonce!, expiresAt: auth.expiresAt! };
    check = checkOwnerSignature({
      message,
      pubKeyHex: auth.customerPubKeyHex!,
      signatureDerHex: auth.customerSignatureDerHex!,
      expectedAddress: to,
      network,
    });
  } else {
    return 'its authorization is of an unknown kind';
  }
  return check.ok ? null : `its authorization does not verify (${check.reason.replace(/_/g, ' ')})`;
}

/**
 * Checks a bundle: the registration, then each transfer in order, each as an anchored record and as a link from
 * the head before it. The verdict names the current owner: the last transfer's new owner, or the first owner.
 */
export async function checkProofBundle(bundle: ProofBundle, deps: CheckDeps): Promise<BundleVerdict> {
  if (bundle.format !== PROOF_BUNDLE_FORMAT && bundle.format !== PROOF_BUNDLE_FORMAT_V2) {
    return { status: 'invalid', reason: `unknown bundle format ${String(bundle.format)}` };
  }
  if (typeof bundle.record !== 'object' || bundle.record === null || typeof bundle.anchor !== 'object' || bundle.anchor === null) {
    return { status: 'invalid', reason: 'the bundle has no record or no anchor' };
  }
  // The issuer key signs records and tree heads alike: the bundle must prove the registration of this very uid,
  // not some other signed and anchored thing (another patch's record, a tree head) relabelled.
  if (bundle.record.kind !== 'patchproof.registration' || bundle.record.uid !== bundle.uid) {
    return { status: 'invalid', reason: 'the record is not the registration of this patch' };
  }
  const witness = witnessFor(bundle, deps);
  const registration = await checkAnchoredRecord(bundle, deps, witness);
  if (!registration.ok) {
    if (registration.revokedKey)
      return { status: 'revoked-key', reason: registration.reason, revokedKey: { ...registration.revokedKey, seq: 0 } };
    return registration.pending
      ? { status: 'pending', reason: registration.reason, confirmations: registration.confirmations }
      : { status: 'invalid', reason: registration.reason };
  }
  let head: ChainHead = { txid: bundle.anchor.txid, recordHash: bundle.recordHash, owner: String(bundle.record.initialOwner), seq: 0 };
  const links: LinkVerdict[] = [];
  const checked = [...registration.checked];
  const unchecked = registration.unchecked ? [registration.unchecked] : [];
  for (const transfer of bundle.transfers ?? []) {
    const seq = head.seq + 1;
    const problem = transferLinkProblem(transfer.record, head, bundle.uid, bundle.network);
    if (problem) return { status: 'invalid', reason: `transfer ${seq}: ${problem}` };
    const verdict = await checkAnchoredRecord(transfer, deps, witness);
    if (!verdict.ok) {
      if (verdict.revokedKey)
        return { status: 'revoked-key', reason: `transfer ${seq}: ${verdict.reason}`, revokedKey: { ...verdict.revokedKey, seq } };
      return verdict.pending
        ? { status: 'pending', reason: `transfer ${seq}: ${verdict.reason}`, confirmations: registration.confirmations ?? 0 }
        : { status: 'invalid', reason: `transfer ${seq}: ${verdict.reason}` };
    }
    links.push({ seq, confirmations: verdict.confirmations ?? 0, blockHeight: verdict.blockHeight });
    checked.push(...verdict.checked.map((line) => `transfer ${seq}: ${line}`));
    if (verdict.unchecked) unchecked.push(`transfer ${seq}: ${verdict.unchecked}`);
    head = { txid: transfer.anchor.txid, recordHash: transfer.recordHash, owner: String(transfer.record.to), seq };
  }
  if (unchecked.length > 0 || registration.confirmations === null) {
    return { status: 'incomplete', blockHeight: registration.blockHeight, currentOwner: head.owner, links, checked, unchecked };
  }
  return {
    status: 'authentic',
    confirmations: registration.confirmations,
    blockHeight: registration.blockHeight,
    currentOwner: head.owner,
    links,
    checked,
  };
}

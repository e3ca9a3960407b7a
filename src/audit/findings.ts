/**
 * What an audit can find. Each code names one way the database, Temporal and the chain disagree; the runbook
 * (docs/OPERATIONS.md, "Auditing") says what each means and what to do about it.
 */
export const FINDING_CODES = [
  /** The stored record no longer hashes to its stored record hash: the document changed after it was signed. */
  'record-hash-mismatch',
  /** Marked anchored, but without an anchor tx or the material its proof is built from. */
  'anchor-missing',
  /** The proof does not check: signature, issuer key, inclusion path, or the tx output's root and count. */
  'proof-invalid',
  /** Signed by a revoked issuer key, and not provably before the revocation. */
  'issuer-key-revoked',
  /** The anchor tx is not proven by the chain follower (or not tracked at all) after the allowed time. */
  'tx-unproven',
  /** The stored Merkle proof of the anchor tx does not lead to the merkle root of the stored header of its block. */
  'tx-proof-mismatch',
  /** The anchor tx's block is not (or no longer) on the local best chain. */
  'tx-off-best-chain',
  /** The record's workflow is not in Temporal (never started, deleted, or past the namespace retention). */
  'workflow-missing',
  /** The record's workflow did not complete (running, failed, terminated, timed out, cancelled). */
  'workflow-not-completed',
  /** The workflow's result names another tx, record hash, uid or output than the database. */
  'workflow-result-mismatch',
  /** Pending or anchoring for longer than the allowed time. */
  'stuck',
] as const;

export type FindingCode = (typeof FINDING_CODES)[number];

export interface AuditFinding {
  code: FindingCode;
  /** What is concerned: a registration (uid), a transfer (its workflow id) or an anchor tx. */
  subject: { kind: 'registration' | 'transfer' | 'anchor-tx'; id: string };
  txid?: string;
  /** Ids, hashes and reasons only: no record contents, owners or keys beyond public key ids. */
  detail: string;
}

import { canonicalHash, wholeSecondsIso, type CanonicalValue } from '../anchoring/canonical';

/** How a transfer was authorised: the owner's own signature, or a point-of-sale claim the merchant approved. */
export type TransferAuthorization =
  | { kind: 'owner-signature'; nonce: string; expiresAt: string; pubKeyHex: string; signatureDerHex: string }
  | {
      kind: 'pos-claim';
      claimId: string;
      approvedBy: string;
      nonce: string;
      expiresAt: string;
      customerPubKeyHex: string;
      customerSignatureDerHex: string;
    };

export interface TransferRequest {
  uid: string;
  /** The head the owner signed for; the transfer fails if the head moved meanwhile. */
  headTxid: string;
  newOwner: string;
  authorization: TransferAuthorization;
}

/**
 * The record the issuer signs and the chain anchors for one transfer. It links to the previous head (its anchor
 * txid and record hash), so the ownership chain is checkable link by link, and carries the authorization so anyone
 * can re-check the owner's (or customer's) signature.
 */
export interface TransferRecord {
  [key: string]: CanonicalValue | undefined;
  v: 1;
  kind: 'patchproof.transfer';
  uid: string;
  /** 1 for the first transfer after registration. */
  seq: number;
  previous: { txid: string; recordHash: string };
  from: string;
  to: string;
  authorization: { [key: string]: string };
  /** ISO 8601, whole seconds, UTC: the transfer workflow's start time. */
  transferredAt: string;
}

export function transferRecord(input: {
  request: TransferRequest;
  seq: number;
  previousRecordHash: string;
  from: string;
  transferredAt: Date;
}): TransferRecord {
  return {
    v: 1,
    kind: 'patchproof.transfer',
    uid: input.request.uid,
    seq: input.seq,
    previous: { txid: input.request.headTxid, recordHash: input.previousRecordHash },
    from: input.from,
    to: input.request.newOwner,
    authorization: { ...input.request.authorization },
    transferredAt: wholeSecondsIso(input.transferredAt),
  };
}

export function transferRecordHash(record: TransferRecord): string {
  return canonicalHash(record);
}

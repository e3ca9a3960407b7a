import { isValidUid } from '../registration/ids';

/** Workflow-ID builders of the transfer domain; no other code concatenates these IDs. */

const TXID = /^[0-9a-f]{64}$/;

/**
 * One transfer per patch head: two transfers of the same head cannot both proceed, because the second start finds
 * the id taken. After a transfer is anchored the head moves, so the next transfer has a new id.
 */
export function transferWorkflowId(uid: string, headTxid: string): string {
  if (!isValidUid(uid) || !TXID.test(headTxid)) throw new RangeError('a transfer id needs a valid uid and a 64-hex head txid');
  return `transfer-${uid}-${headTxid}`;
}

/** `transfer-<uid>-<headTxid>`, one regular expression so the API can publish exactly what it accepts. */
export const TRANSFER_ID_PATTERN = /^transfer-[A-Za-z0-9][A-Za-z0-9._:-]{0,127}-[0-9a-f]{64}$/;

export function isTransferWorkflowId(id: string): boolean {
  return TRANSFER_ID_PATTERN.test(id);
}

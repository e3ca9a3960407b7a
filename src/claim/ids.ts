import { isValidUid } from '../registration/ids';
import { NONCE_PATTERN } from '../ownership/guards';

/** Workflow-ID builders of the point-of-sale claim domain; no other code concatenates these IDs. */

/** One claim per signed intent: the customer's nonce is single-use, so it names the claim. */
export function claimWorkflowId(uid: string, nonce: string): string {
  if (!isValidUid(uid) || !NONCE_PATTERN.test(nonce)) throw new RangeError('a claim id needs a valid uid and nonce');
  return `claim-${uid}-${nonce}`;
}

/** `claim-<uid>-<nonce>`, one regular expression so the API can publish exactly what it accepts. */
export const CLAIM_ID_PATTERN = /^claim-[A-Za-z0-9][A-Za-z0-9._:-]{0,127}-[A-Za-z0-9_-]{16,64}$/;

export function isClaimWorkflowId(id: string): boolean {
  return CLAIM_ID_PATTERN.test(id);
}

import { KEY_IDENTIFIER_PATTERN } from '../rotation/ids';

/** Workflow ids of the issuer key directory; no other code concatenates these. */

const REVOCATION_PREFIX = 'issuer-key-revocation-';

/** One revocation of a key at a time: a second request while one runs attaches to it. */
export function issuerKeyRevocationWorkflowId(kid: string): string {
  if (!KEY_IDENTIFIER_PATTERN.test(kid)) throw new RangeError('kid must be a KMS key identifier: a name, optionally @<version>');
  return `${REVOCATION_PREFIX}${kid}`;
}

export function kidFromRevocationWorkflowId(workflowId: string): string | null {
  const kid = workflowId.startsWith(REVOCATION_PREFIX) ? workflowId.slice(REVOCATION_PREFIX.length) : '';
  return KEY_IDENTIFIER_PATTERN.test(kid) ? kid : null;
}

/** Where the API publishes the directory, as RFC 8615 well-known URIs are named. */
export const KEY_DIRECTORY_PATH = '/.well-known/patchproof-keys.json';

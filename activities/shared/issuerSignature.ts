import { ApplicationFailure } from '@temporalio/activity';
import type { KmsClient } from '../../src/kms/client';
import { isKmsError } from '../../src/kms/errors';
import { withHeartbeats } from './heartbeat';

export interface IssuerSignature {
  signatureDerHex: string;
  pubKeyHex: string;
  keyIdentifier: string;
}

/**
 * The issuer's signature over a record digest, through the KMS (standard big-endian ECDSA, low-S, DER). A key the
 * KMS refuses fails for good; an unreachable KMS is retried by the activity's policy.
 */
export async function signAsIssuer(kms: KmsClient, keyIdentifier: string, digestHex: string): Promise<IssuerSignature> {
  const [signature] = await signDigestsAsIssuer(kms, keyIdentifier, [digestHex]);
  return signature!;
}

/** The issuer's signatures over several digests in one KMS request (a bulk batch's tree heads), index-aligned. */
export async function signDigestsAsIssuer(kms: KmsClient, keyIdentifier: string, digestsHex: string[]): Promise<IssuerSignature[]> {
  try {
    const signatures = await withHeartbeats({ step: 'issuer-signing', digests: digestsHex.length }, () =>
      kms.sign(digestsHex.map((digestHex) => ({ keyIdentifier, digestHex }))),
    );
    return signatures.map((signature) => ({ ...signature, keyIdentifier }));
  } catch (err) {
    if (isKmsError(err) && !err.retryable) throw ApplicationFailure.nonRetryable(err.message, 'KmsRejected', { kind: err.kind });
    throw err;
  }
}

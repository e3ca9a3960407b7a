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
  try {
    const [signature] = await withHeartbeats({ step: 'issuer-signing' }, () => kms.sign([{ keyIdentifier, digestHex }]));
    return { ...signature!, keyIdentifier };
  } catch (err) {
    if (isKmsError(err) && !err.retryable) throw ApplicationFailure.nonRetryable(err.message, 'KmsRejected', { kind: err.kind });
    throw err;
  }
}

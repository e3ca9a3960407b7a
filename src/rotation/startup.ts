import type { KmsClient } from '../kms/client';
import type { KmsKeyPurpose } from './ids';
import type { Keyring } from './keyring';

export class ActiveKeyUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ActiveKeyUnavailableError';
  }
}

/**
 * Production start-up check: the KMS answers and holds the active key of every purpose this process signs with
 * (after a rotation, the one the key settings name). Fails with one message naming each key that is missing.
 */
export async function assertActiveKeysAvailable(keyring: Keyring, kms: KmsClient, purposes: readonly KmsKeyPurpose[]): Promise<void> {
  const problems: string[] = [];
  for (const purpose of purposes) {
    const keyIdentifier = await keyring.activeKeyId(purpose);
    try {
      await kms.publicKey(keyIdentifier);
    } catch (err) {
      problems.push(`${purpose} key ${keyIdentifier}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ActiveKeyUnavailableError(`the KMS cannot serve the active keys:\n  - ${problems.join('\n  - ')}`);
}

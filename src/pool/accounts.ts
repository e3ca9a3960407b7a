import { PublicKey } from '@bsv/sdk';
import { addressOfPublicKey, type Network } from '../chain/addresses';
import { p2pkhOutputScript } from '../chain/transactions';
import type { PoolConfig } from '../config';
import type { KmsClient } from '../kms/client';
import type { PoolAccount, PoolAccounts } from '../../workflows/pool/shared';

export class PoolMisconfiguredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoolMisconfiguredError';
  }
}

/**
 * The pool's funding and change addresses. A configured address is used as is unless `verify` is set; an
 * unconfigured one, or a verified one, is derived from the KMS key's public key, and a mismatch is refused: funds
 * sent to an address the key cannot spend would be lost.
 */
export async function resolvePoolAccounts(pool: PoolConfig, kms: KmsClient, network: Network, verify: boolean): Promise<PoolAccounts> {
  async function account(keyIdentifier: string, configured: string | undefined): Promise<PoolAccount> {
    let address = configured;
    if (!address || verify) {
      const key = await kms.publicKey(keyIdentifier);
      const derived = addressOfPublicKey(PublicKey.fromString(key.pubKeyHex).toHash() as number[], network);
      if (configured && configured !== derived) {
        throw new PoolMisconfiguredError(
          `configured address ${configured} does not belong to KMS key ${keyIdentifier} (its address is ${derived})`,
        );
      }
      address = derived;
    }
    return { keyIdentifier, address, lockingScriptHex: p2pkhOutputScript(address, network).toHex() };
  }
  const funding = await account(pool.fundingKeyIdentifier, pool.fundingAddress);
  const sameAsFunding =
    pool.changeKeyIdentifier === pool.fundingKeyIdentifier && (pool.changeAddress === undefined || pool.changeAddress === funding.address);
  const change = sameAsFunding ? funding : await account(pool.changeKeyIdentifier, pool.changeAddress);
  return { funding, change, network };
}

/**
 * FUNDING_PUBKEY_HEX pins the public key of the configured funding key (UTXO_FUNDING_KEY_IDENTIFIER). When it is
 * set, the KMS must serve exactly that key under that identifier; otherwise a migrated or misconfigured KMS would
 * make the pool fund, split and sign from a key nobody meant to use. Returns whether there was a pin to check;
 * throws PoolMisconfiguredError on a mismatch. KMS errors propagate as they are.
 */
export async function verifyFundingPublicKey(pool: PoolConfig, kms: KmsClient): Promise<boolean> {
  if (pool.fundingPubKeyHex === undefined) return false;
  const served = (await kms.publicKey(pool.fundingKeyIdentifier)).pubKeyHex.toLowerCase();
  if (served !== pool.fundingPubKeyHex.toLowerCase()) {
    throw new PoolMisconfiguredError(
      `FUNDING_PUBKEY_HEX is ${pool.fundingPubKeyHex} but the KMS serves ${served} for funding key ${pool.fundingKeyIdentifier}; ` +
        'fix UTXO_FUNDING_KEY_IDENTIFIER or FUNDING_PUBKEY_HEX (public keys, not secrets)',
    );
  }
  return true;
}

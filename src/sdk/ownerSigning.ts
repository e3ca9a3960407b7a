import { BigNumber, ECDSA, PrivateKey } from '@bsv/sdk';
import { ownerMessageDigest, type OwnerMessage } from '../ownership/messages';

export type { OwnerMessage } from '../ownership/messages';

/**
 * Signs an owner message the way the API checks it: standard big-endian ECDSA over sha256 of the message's
 * canonical JSON, low-S, DER. For wallets and point-of-sale apps; the private key never leaves the caller.
 */
export function signOwnerMessage(privateKeyHex: string, message: OwnerMessage): { pubKeyHex: string; signatureDerHex: string } {
  const key = PrivateKey.fromHex(privateKeyHex);
  const digest = [...Buffer.from(ownerMessageDigest(message), 'hex')];
  const signature = ECDSA.sign(new BigNumber(digest), key, true);
  return { pubKeyHex: key.toPublicKey().toString(), signatureDerHex: signature.toDER('hex') as string };
}

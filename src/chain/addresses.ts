import { Utils } from '@bsv/sdk';

export type Network = 'main' | 'test';

const P2PKH_PREFIX: Record<Network, number> = { main: 0x00, test: 0x6f };

export class InvalidAddressError extends Error {
  constructor(reason: string) {
    super(`invalid address: ${reason}`);
    this.name = 'InvalidAddressError';
  }
}

/**
 * Decodes a P2PKH address and checks its checksum, its length and that its prefix belongs to `network`
 * (accepting mainnet addresses only would lock testnet owners out of transfers).
 */
export function parseP2pkhAddress(address: string, network: Network): number[] {
  if (!/^[1-9A-HJ-NP-Za-km-z]{25,35}$/.test(address)) throw new InvalidAddressError('not base58 of a plausible length');
  let decoded: { prefix: number[] | string; data: number[] | string };
  try {
    decoded = Utils.fromBase58Check(address);
  } catch {
    throw new InvalidAddressError('bad checksum');
  }
  const prefix = decoded.prefix as number[];
  const data = decoded.data as number[];
  if (prefix.length !== 1 || prefix[0] !== P2PKH_PREFIX[network]) throw new InvalidAddressError(`not a ${network}net P2PKH address`);
  if (data.length !== 20) throw new InvalidAddressError('payload is not a 20-byte key hash');
  return data;
}

export function isValidP2pkhAddress(address: string, network: Network): boolean {
  try {
    parseP2pkhAddress(address, network);
    return true;
  } catch {
    return false;
  }
}

/** The address of a compressed public key on `network`. */
export function addressOfPublicKey(pubKeyHash: number[], network: Network): string {
  return Utils.toBase58Check(pubKeyHash, [P2PKH_PREFIX[network]]);
}

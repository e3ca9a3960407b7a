import { Hash, type LockingScript, P2PKH, Utils } from '@bsv/sdk';

export type Network = 'main' | 'test';

export const NETWORKS: readonly Network[] = ['main', 'test'];

const PREFIX: Record<Network, number> = { main: 0x00, test: 0x6f };

export function isNetwork(value: unknown): value is Network {
  return value === 'main' || value === 'test';
}

/** A P2PKH address of either network, or undefined when the checksum, prefix or length is wrong. */
export function parseAddress(address: string): { network: Network; pubKeyHash: number[] } | undefined {
  try {
    const { prefix, data } = Utils.fromBase58Check(address);
    const network = NETWORKS.find((n) => PREFIX[n] === (prefix as number[])[0]);
    if (!network || (data as number[]).length !== 20) return undefined;
    return { network, pubKeyHash: data as number[] };
  } catch {
    return undefined;
  }
}

export function p2pkhScriptHex(pubKeyHash: number[]): string {
  return new P2PKH().lock(pubKeyHash).toHex();
}

/** The address a P2PKH locking script pays, for `scriptPubKey.addresses`. */
export function addressOfScript(script: LockingScript, network: Network): string | undefined {
  const c = script.chunks;
  const isP2pkh =
    c.length === 5 && c[0]?.op === 0x76 && c[1]?.op === 0xa9 && c[2]?.data?.length === 20 && c[3]?.op === 0x88 && c[4]?.op === 0xac;
  return isP2pkh ? Utils.toBase58Check(c[2]!.data!, [PREFIX[network]]) : undefined;
}

/** WhatsOnChain's script hash: sha256 of the locking script, byte-reversed, in hex. */
export function scriptHashOf(scriptHex: string): string {
  return Utils.toHex(Hash.sha256(Utils.toArray(scriptHex, 'hex')).reverse());
}

import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { addressOfPublicKey, isValidP2pkhAddress, type Network } from '../src/chain/addresses';

extendZodWithOpenApi(z);

/**
 * Request fields whose rule is more than a type: each publishes in the OpenAPI document the pattern and format the
 * server enforces, so a client generator or a fuzzer sends what the server accepts.
 */

const BASE58 = '1-9A-HJ-NP-Za-km-z';

/** The shape of a P2PKH address per network: version 0x00 encodes to 26–34 characters from "1", 0x6f to 34 from m or n. */
const P2PKH_SHAPE: Record<Network, RegExp> = {
  main: new RegExp(`^1[${BASE58}]{25,33}$`),
  test: new RegExp(`^[mn][${BASE58}]{33}$`),
};

/** A P2PKH address of `network`: the pattern, then the Base58Check checksum, the version byte and the 20-byte hash. */
export function p2pkhAddress(network: Network) {
  const message = `a P2PKH address of the ${network} network`;
  return z
    .string()
    .regex(P2PKH_SHAPE[network], message)
    .refine((address) => isValidP2pkhAddress(address, network), message)
    .openapi({
      format: 'p2pkh-address',
      description: `${message}: Base58Check, version byte ${network === 'main' ? '0x00' : '0x6f'}, 20-byte key hash; the checksum is checked`,
      example: addressOfPublicKey(new Array<number>(20).fill(0x11), network),
    });
}

/**
 * An email address as the server checks it: zod's email pattern, at most 320 characters, no trimming. Published as
 * the pattern alone: `format: email` would promise RFC 5321 limits (a 64-character local part) the server does not apply.
 */
export const EmailAddress = z
  .string()
  .max(320)
  .regex(z.regexes.email, 'Invalid email address')
  .openapi({ description: 'An email address', example: 'owner@example.com' });

/** A UTC time as the signed messages carry it: ISO 8601 with seconds and `Z`, no offset (zod's `iso.datetime()`). */
const utcTime = z.iso.datetime();
export const UtcTime = utcTime.openapi({ pattern: utcTime._zod.def.pattern?.source });

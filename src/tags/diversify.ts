import { aesCmac, uidBytes } from './sun';

/**
 * AES-128 key diversification after NXP AN10922: a diversified key is CMAC(master, 0x01 ‖ M), M being at most 31
 * bytes of diversification input (the CMAC's own padding is AN10922's). Each tag gets its own SDM file-read key, so
 * a key read out of one tag forges nothing for another. Pure: the KMS runs it beside the master keys, the
 * application never does.
 */

const AES128_DIVERSIFICATION_CONSTANT = 0x01;
const MAX_DIVERSIFICATION_INPUT = 31;
/** System identifier in every input: our keys never coincide with another system's diversified from one master. */
export const TAG_SYSTEM_IDENTIFIER = Buffer.from('PatchProof', 'ascii');
/** NTAG 424 DNA application key numbers used by our SDM settings (docs/TAGS.md). */
export const SDM_META_READ_KEY_NO = 0x01;
export const SDM_FILE_READ_KEY_NO = 0x02;

export function diversifyAes128(masterKey: Uint8Array, input: Uint8Array): Promise<Buffer> {
  if (input.length < 1 || input.length > MAX_DIVERSIFICATION_INPUT) throw new Error('AN10922 AES-128 diversification input is 1–31 bytes');
  return aesCmac(masterKey, Buffer.concat([Buffer.from([AES128_DIVERSIFICATION_CONSTANT]), input]));
}

/** The tag's own SDM file-read key: M = UID ‖ key number ‖ system identifier. */
export function tagFileReadKey(masterKey: Uint8Array, uidHex: string): Promise<Buffer> {
  return diversifyAes128(masterKey, Buffer.concat([uidBytes(uidHex), Buffer.from([SDM_FILE_READ_KEY_NO]), TAG_SYSTEM_IDENTIFIER]));
}

/**
 * The SDM meta-read key of every tag of one master version. It cannot depend on the UID: the UID is what it hides,
 * so the reader needs the key before it knows the tag. It only keeps UID and counter private; authenticity rests on
 * the per-tag file-read key.
 */
export function fleetMetaReadKey(masterKey: Uint8Array): Promise<Buffer> {
  return diversifyAes128(masterKey, Buffer.concat([Buffer.from([SDM_META_READ_KEY_NO]), TAG_SYSTEM_IDENTIFIER]));
}

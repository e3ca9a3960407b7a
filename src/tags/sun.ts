import { createCipheriv, createDecipheriv, timingSafeEqual } from 'node:crypto';
import { AesCmac } from 'aes-cmac';

/**
 * NTAG 424 DNA Secure Unique NFC (SUN) messages, as the tag writes them into its SDM URL on every tap: PICCData
 * (UID and read counter, AES-128-CBC under the SDM meta-read key with a zero IV) and a truncated AES-CMAC under a
 * session key derived from the SDM file-read key. Pure: keys and bytes in, verdicts out; no I/O. docs/TAGS.md
 * explains the URL layout and the keys.
 */

export const AES_BLOCK = 16;
export const NTAG_UID_BYTES = 7;
/** SDMMAC is 8 bytes: the odd-indexed bytes of the full 16-byte CMAC. */
export const SUN_MAC_BYTES = 8;
/** Counter is 24 bits; it never wraps on a real tag (it stops at the limit). */
export const SDM_READ_COUNTER_MAX = 0xffffff;

const ZERO_IV = Buffer.alloc(AES_BLOCK);
/** SV2 prefix: session vector for the SDM file-read MAC key (3CC3 0001 0080). */
const SV2_PREFIX = Buffer.from('3cc300010080', 'hex');

export interface PiccData {
  /** The tag's 7-byte UID, upper-case hex. */
  uidHex: string;
  /** SDMReadCtr as a number (sent LSB first on the wire). */
  readCounter: number;
  /** The raw 3 counter bytes, as used in SV2. */
  readCounterBytes: Buffer;
}

/** Why a PICCData block is not one we can use: never secret, safe to log. */
export type PiccDataProblem = 'wrong_length' | 'no_uid_mirror' | 'no_counter_mirror' | 'unsupported_uid_length';

export type PiccDataResult = { ok: true; picc: PiccData } | { ok: false; problem: PiccDataProblem };

function aesKey(key: Uint8Array, what: string): Buffer {
  if (key.length !== AES_BLOCK) throw new Error(`${what} must be 16 bytes (AES-128)`);
  return Buffer.from(key);
}

/** AES-128-CBC decryption with a zero IV and no padding, as the tag encrypts PICCData. */
export function decryptPiccData(sdmMetaReadKey: Uint8Array, encrypted: Uint8Array): Buffer {
  const decipher = createDecipheriv('aes-128-cbc', aesKey(sdmMetaReadKey, 'the SDM meta-read key'), ZERO_IV);
  decipher.setAutoPadding(false);
  return Buffer.concat([decipher.update(encrypted), decipher.final()]);
}

/**
 * Reads decrypted PICCData: the PICCDataTag byte (bit 7 UID mirrored, bit 6 counter mirrored, low nibble the UID
 * length), then the UID, then the 3-byte counter. Only 7-byte UIDs with both mirrors are accepted: that is how
 * our tags are provisioned, and a tap without a counter could never be told from a replay.
 */
export function parsePiccData(plain: Uint8Array): PiccDataResult {
  if (plain.length !== AES_BLOCK) return { ok: false, problem: 'wrong_length' };
  const tag = plain[0]!;
  if ((tag & 0x80) === 0) return { ok: false, problem: 'no_uid_mirror' };
  if ((tag & 0x40) === 0) return { ok: false, problem: 'no_counter_mirror' };
  if ((tag & 0x0f) !== NTAG_UID_BYTES) return { ok: false, problem: 'unsupported_uid_length' };
  const uid = Buffer.from(plain.subarray(1, 1 + NTAG_UID_BYTES));
  const counterBytes = Buffer.from(plain.subarray(1 + NTAG_UID_BYTES, 4 + NTAG_UID_BYTES));
  return {
    ok: true,
    picc: { uidHex: uid.toString('hex').toUpperCase(), readCounter: counterBytes.readUIntLE(0, 3), readCounterBytes: counterBytes },
  };
}

/** The encrypted PICCData block a tag writes for this UID and counter (the simulator and tests use it). */
export function encryptPiccData(sdmMetaReadKey: Uint8Array, uidHex: string, readCounter: number, padding: Uint8Array): Buffer {
  const uid = uidBytes(uidHex);
  if (padding.length !== AES_BLOCK - 1 - NTAG_UID_BYTES - 3) throw new Error('PICCData padding must be 5 bytes');
  const plain = Buffer.concat([Buffer.from([0xc0 | NTAG_UID_BYTES]), uid, counterBytes(readCounter), Buffer.from(padding)]);
  const cipher = createCipheriv('aes-128-cbc', aesKey(sdmMetaReadKey, 'the SDM meta-read key'), ZERO_IV);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(plain), cipher.final()]);
}

export function uidBytes(uidHex: string): Buffer {
  if (!/^[0-9a-fA-F]{14}$/.test(uidHex)) throw new Error('a tag UID is 7 bytes of hex');
  return Buffer.from(uidHex, 'hex');
}

export function counterBytes(readCounter: number): Buffer {
  if (!Number.isInteger(readCounter) || readCounter < 0 || readCounter > SDM_READ_COUNTER_MAX) {
    throw new Error('SDMReadCtr is a 24-bit unsigned integer');
  }
  const bytes = Buffer.alloc(3);
  bytes.writeUIntLE(readCounter, 0, 3);
  return bytes;
}

/** AES-128 CMAC (NIST SP 800-38B / RFC 4493). */
export async function aesCmac(key: Uint8Array, message: Uint8Array): Promise<Buffer> {
  return Buffer.from(await new AesCmac(aesKey(key, 'a CMAC key')).calculate(Uint8Array.from(message)));
}

/** KSesSDMFileReadMAC = CMAC(SDM file-read key, SV2), SV2 = 3CC3 0001 0080 ‖ UID ‖ SDMReadCtr. */
export function sessionMacKey(sdmFileReadKey: Uint8Array, uidHex: string, readCounter: number): Promise<Buffer> {
  return aesCmac(sdmFileReadKey, Buffer.concat([SV2_PREFIX, uidBytes(uidHex), counterBytes(readCounter)]));
}

/** The 8 odd-indexed bytes of a full CMAC (MACt). */
export function truncateMac(fullMac: Uint8Array): Buffer {
  if (fullMac.length !== AES_BLOCK) throw new Error('a full CMAC is 16 bytes');
  return Buffer.from([1, 3, 5, 7, 9, 11, 13, 15].map((i) => fullMac[i]!));
}

/** SDMMAC over the MAC input (empty when SDMMACInputOffset equals SDMMACOffset). */
export async function sunMac(sessionKey: Uint8Array, macInput: Uint8Array): Promise<Buffer> {
  return truncateMac(await aesCmac(sessionKey, macInput));
}

/** Constant-time: a forger learns nothing from how long a wrong MAC takes to refuse. */
export async function sunMacMatches(sessionKey: Uint8Array, macInput: Uint8Array, presented: Uint8Array): Promise<boolean> {
  const expected = await sunMac(sessionKey, macInput);
  if (presented.length !== expected.length) return false;
  return timingSafeEqual(expected, presented);
}

export interface SunVerification {
  outcome: 'valid' | 'invalid-picc' | 'invalid-mac';
  picc?: PiccData;
}

/**
 * The whole check with both keys in hand (the dev KMS, the simulator and tests): decrypt, parse, derive the session
 * key, compare. The API never holds these keys: it asks the KMS for the session key (src/tags/taps.ts).
 */
export async function verifySunMessage(
  keys: { sdmMetaReadKey: Uint8Array; sdmFileReadKey: Uint8Array },
  message: {
    piccData: Uint8Array;
    mac: Uint8Array;
    macInput?: Uint8Array;
  },
): Promise<SunVerification> {
  if (message.piccData.length !== AES_BLOCK) return { outcome: 'invalid-picc' };
  const parsed = parsePiccData(decryptPiccData(keys.sdmMetaReadKey, message.piccData));
  if (!parsed.ok) return { outcome: 'invalid-picc' };
  const session = await sessionMacKey(keys.sdmFileReadKey, parsed.picc.uidHex, parsed.picc.readCounter);
  const valid = await sunMacMatches(session, message.macInput ?? Buffer.alloc(0), message.mac);
  return { outcome: valid ? 'valid' : 'invalid-mac', picc: parsed.picc };
}

import { createHash } from 'node:crypto';

/**
 * The 80-byte block header: version (uint32 LE), previous block hash (32 bytes, internal order), merkle root
 * (32 bytes, internal order), time (uint32 LE), bits (uint32 LE), nonce (uint32 LE). Hashes are shown in display
 * order (byte-reversed hex), as block explorers and WhatsOnChain show them. Pure, no I/O.
 */
export interface BlockHeaderFields {
  version: number;
  prevHash: string;
  merkleRoot: string;
  /** Seconds since the epoch. */
  time: number;
  bits: number;
  nonce: number;
}

export const BLOCK_HEADER_BYTES = 80;
const HEX32 = /^[0-9a-f]{64}$/;

function internal(displayHex: string): Buffer {
  if (!HEX32.test(displayHex)) throw new RangeError('expected a 32-byte hash as 64 lower-case hex characters');
  return Buffer.from(displayHex, 'hex').reverse();
}

function display(bytes: Buffer): string {
  return Buffer.from(bytes).reverse().toString('hex');
}

function uint32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${what} must be a uint32`);
  return value;
}

export function serializeBlockHeader(header: BlockHeaderFields): Buffer {
  const bytes = Buffer.alloc(BLOCK_HEADER_BYTES);
  bytes.writeUInt32LE(uint32(header.version, 'version'), 0);
  internal(header.prevHash).copy(bytes, 4);
  internal(header.merkleRoot).copy(bytes, 36);
  bytes.writeUInt32LE(uint32(header.time, 'time'), 68);
  bytes.writeUInt32LE(uint32(header.bits, 'bits'), 72);
  bytes.writeUInt32LE(uint32(header.nonce, 'nonce'), 76);
  return bytes;
}

/** Reads an 80-byte header; null when it is not exactly 80 bytes. */
export function parseBlockHeader(bytes: Uint8Array): BlockHeaderFields | null {
  if (bytes.length !== BLOCK_HEADER_BYTES) return null;
  const b = Buffer.from(bytes);
  return {
    version: b.readUInt32LE(0),
    prevHash: display(b.subarray(4, 36)),
    merkleRoot: display(b.subarray(36, 68)),
    time: b.readUInt32LE(68),
    bits: b.readUInt32LE(72),
    nonce: b.readUInt32LE(76),
  };
}

/** hash256 = sha256(sha256(bytes)), in internal byte order. */
export function hash256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(createHash('sha256').update(bytes).digest()).digest();
}

/** The block hash (display order) of a serialized header. */
export function blockHashOf(headerBytes: Uint8Array): string {
  return display(hash256(headerBytes));
}

export function blockHash(header: BlockHeaderFields): string {
  return blockHashOf(serializeBlockHeader(header));
}

/**
 * The target `bits` encodes (compact form: exponent byte, 3-byte mantissa), or null for a negative or overflowing
 * encoding, which no valid header carries.
 */
export function targetOfBits(bits: number): bigint | null {
  const exponent = bits >>> 24;
  const mantissa = bits & 0x007fffff;
  if ((bits & 0x00800000) !== 0 && mantissa !== 0) return null;
  const target = exponent <= 3 ? BigInt(mantissa >>> (8 * (3 - exponent))) : BigInt(mantissa) << BigInt(8 * (exponent - 3));
  if (target >= 1n << 256n) return null;
  return target;
}

/** Proof of work: the header's hash, read as a 256-bit number, is at most the target its bits encode. */
export function meetsProofOfWork(headerBytes: Uint8Array): boolean {
  const header = parseBlockHeader(headerBytes);
  if (!header) return false;
  const target = targetOfBits(header.bits);
  if (target === null || target === 0n) return false;
  return BigInt(`0x${blockHashOf(headerBytes)}`) <= target;
}

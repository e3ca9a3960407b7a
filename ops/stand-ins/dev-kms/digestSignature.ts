import { createECDH, createHmac } from 'node:crypto';
import { BigNumber, Signature } from '@bsv/sdk';

/**
 * ECDSA over a 32-byte digest as given, as a cloud KMS signs in DIGEST mode. Node's crypto.sign cannot do it (it
 * always hashes its input once more), so only the costly step, the point k·G, is left to OpenSSL (through ECDH,
 * several times faster than the SDK's JavaScript); the nonce is RFC 6979's, as the SDK's ECDSA.sign derives it, so
 * the signatures are the very ones the SDK would make.
 */

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** Signs `digest` with the 32-byte private scalar `privateKey`; S is returned as it comes, high or low. */
export function signDigest(digest: Uint8Array, privateKey: Uint8Array): Signature {
  if (digest.length !== 32 || privateKey.length !== 32) throw new Error('signDigest: digest and key must be 32 bytes');
  const d = toBigInt(privateKey);
  if (d < 1n || d >= N) throw new Error('signDigest: the private key is out of range');
  const e = toBigInt(digest) % N;
  const ecdh = createECDH('secp256k1');
  for (const k of rfc6979Nonces(Buffer.from(privateKey), toBytes(e))) {
    ecdh.setPrivateKey(toBytes(k));
    // Compressed k·G: its x coordinate follows the parity byte.
    const r = toBigInt(ecdh.getPublicKey(null, 'compressed').subarray(1)) % N;
    if (r === 0n) continue;
    const s = (modInverse(k) * ((e + r * d) % N)) % N;
    if (s === 0n) continue;
    return new Signature(new BigNumber(r.toString(16), 16), new BigNumber(s.toString(16), 16));
  }
  throw new Error('unreachable');
}

/** RFC 6979 §3.2 with HMAC-SHA256 and a 256-bit order: candidate nonces in [1, n − 1], in order. */
function* rfc6979Nonces(x: Buffer, h1: Buffer): Generator<bigint> {
  const hmac = (key: Buffer, ...parts: Buffer[]) => createHmac('sha256', key).update(Buffer.concat(parts)).digest();
  let v = Buffer.alloc(32, 0x01);
  let k = Buffer.alloc(32, 0x00);
  k = hmac(k, v, Buffer.of(0x00), x, h1);
  v = hmac(k, v);
  k = hmac(k, v, Buffer.of(0x01), x, h1);
  v = hmac(k, v);
  for (;;) {
    v = hmac(k, v);
    const candidate = toBigInt(v);
    if (candidate >= 1n && candidate < N) yield candidate;
    k = hmac(k, v, Buffer.of(0x00));
    v = hmac(k, v);
  }
}

function toBigInt(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
}

function toBytes(value: bigint): Buffer {
  return Buffer.from(value.toString(16).padStart(64, '0'), 'hex');
}

/** a⁻¹ mod n by the extended Euclidean algorithm; n is prime and 0 < a < n. */
function modInverse(a: bigint): bigint {
  let [low, high] = [a, N];
  let [lm, hm] = [1n, 0n];
  while (low > 1n) {
    const q = high / low;
    [lm, hm] = [hm - lm * q, lm];
    [low, high] = [high - low * q, low];
  }
  return ((lm % N) + N) % N;
}

import type { Connection } from 'mongoose';
import { ownerBindingModel, usedNonceModel } from './models';

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number }).code === 11000;
}

/** Nonces are 16–64 characters of hex, base64url or dashes: enough entropy, safe in ids. */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** Uses a nonce once: true the first time, false on every later attempt (a replay). Race-free: insert by _id. */
export async function consumeNonce(
  mongo: Connection,
  input: { purpose: string; nonce: string; uid: string; expiresAt: Date },
): Promise<boolean> {
  try {
    await usedNonceModel(mongo).create({
      _id: `${input.purpose}:${input.nonce}`,
      uid: input.uid,
      usedAt: new Date(),
      expiresAt: input.expiresAt,
    });
    return true;
  } catch (err) {
    if (isDuplicateKey(err)) return false;
    throw err;
  }
}

/**
 * Binds an address to the owner account whose key signed a bind message naming that account; true when `userId`
 * is (now) the bound account, false when another account holds the address.
 */
export async function bindOwnerAddress(mongo: Connection, address: string, userId: string): Promise<boolean> {
  const bindings = ownerBindingModel(mongo);
  try {
    await bindings.create({ _id: address, userId, boundAt: new Date() });
    return true;
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
  }
  return (await boundAccount(mongo, address)) === userId;
}

/** The owner account an address is bound to, or null. */
export async function boundAccount(mongo: Connection, address: string): Promise<string | null> {
  return (await ownerBindingModel(mongo).findById(address).lean())?.userId ?? null;
}

/** Reads the expiry a client put in a signed message; it must lie in the future and at most `maxSeconds` ahead. */
export function checkExpiry(
  expiresAt: string,
  maxSeconds: number,
  now = Date.now(),
): { ok: true; at: Date } | { ok: false; reason: string } {
  const at = new Date(expiresAt);
  if (Number.isNaN(at.getTime())) return { ok: false, reason: 'expiresAt is not an ISO 8601 time' };
  if (at.getTime() <= now) return { ok: false, reason: 'the signed message has expired' };
  if (at.getTime() > now + maxSeconds * 1000) return { ok: false, reason: `expiresAt may be at most ${maxSeconds} seconds ahead` };
  return { ok: true, at };
}

import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** How long an unlock challenge can be answered. */
export const UNLOCK_CHALLENGE_TTL_SECONDS = 120;
/** How long a used challenge is remembered, so a replay is told apart from an expired or unknown challenge. */
const USED_MARKER_SECONDS = 3600;

const pendingKey = (challenge: string) => `patchproof:unlock:challenge:${challenge}`;
const usedKey = (challenge: string) => `patchproof:unlock:used:${challenge}`;

export interface IssuedChallenge {
  challenge: string;
  expiresAt: string;
}

/** A fresh random challenge for one owner session and patch, single-use, in Redis with a TTL. */
export async function issueUnlockChallenge(redis: Redis, input: { uid: string; userId: string }): Promise<IssuedChallenge> {
  const challenge = randomBytes(32).toString('hex');
  await redis.set(pendingKey(challenge), JSON.stringify(input), 'EX', UNLOCK_CHALLENGE_TTL_SECONDS);
  return { challenge, expiresAt: new Date(Date.now() + UNLOCK_CHALLENGE_TTL_SECONDS * 1000).toISOString() };
}

export type ChallengeUse = { ok: true; uid: string; userId: string } | { ok: false; reason: 'replayed' | 'expired_or_unknown' };

/** Takes a challenge (atomically: GETDEL), so two answers to one challenge cannot both pass. */
export async function takeUnlockChallenge(redis: Redis, challenge: string): Promise<ChallengeUse> {
  const stored = await redis.getdel(pendingKey(challenge));
  if (stored === null) return { ok: false, reason: (await redis.exists(usedKey(challenge))) ? 'replayed' : 'expired_or_unknown' };
  await redis.set(usedKey(challenge), '1', 'EX', USED_MARKER_SECONDS);
  return { ok: true, ...(JSON.parse(stored) as { uid: string; userId: string }) };
}

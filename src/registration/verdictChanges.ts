import type { Redis } from 'ioredis';
import type { Logger } from '../logging/logger';

/**
 * Verification verdicts kept by API processes (api/verdictCache.ts) are dropped when what they were computed from
 * changes: a transfer of the patch starts, anchors or fails (by uid), an issuer key is revoked or the chain follower
 * rolls back a reorg (every verdict). Published on Redis; best effort, since a missed message costs at most the
 * cache's time to live.
 */
export const VERDICT_CHANGES_CHANNEL = 'patchproof:verdict-changes';
const EVERY_VERDICT = '*';

export type VerdictChange = readonly string[] | 'all';

export async function announceVerdictChange(
  redis: Pick<Redis, 'publish'> | undefined,
  change: VerdictChange,
  logger?: Pick<Logger, 'warn'>,
): Promise<void> {
  if (!redis || (change !== 'all' && change.length === 0)) return;
  try {
    await redis.publish(VERDICT_CHANGES_CHANNEL, change === 'all' ? EVERY_VERDICT : change.join('\n'));
  } catch (err) {
    logger?.warn('verdict change not announced; API caches catch up within their time to live', { err });
  }
}

export function parseVerdictChange(message: string): VerdictChange {
  return message === EVERY_VERDICT ? 'all' : message.split('\n').filter(Boolean);
}

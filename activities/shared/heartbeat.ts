import { Context } from '@temporalio/activity';

/** Often enough for the 30 s heartbeat timeouts the workflows set on calls to the KMS and WhatsOnChain. */
const HEARTBEAT_EVERY_MS = 5_000;

/**
 * Heartbeats while `work` runs: a KMS or WhatsOnChain call can take a while through its own retries, and a worker
 * that died mid-call is then noticed after the heartbeat timeout rather than the whole start-to-close timeout.
 */
export async function withHeartbeats<T>(details: Record<string, unknown>, work: () => Promise<T>): Promise<T> {
  const context = Context.current();
  context.heartbeat(details);
  const timer = setInterval(() => context.heartbeat(details), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

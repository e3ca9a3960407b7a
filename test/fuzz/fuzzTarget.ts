import { createApp } from '../../api/app';
import { listen, type Listening } from '../support/http';
import { fundAndSyncPool, loggedInOwner } from '../support/patchApi';
import { startPoolStack, type PoolStack } from '../support/poolStack';
import { ownerAuthTestEnv } from '../support/stack';

/** What schemathesis runs against: the real API and worker on the test services, a throwaway dev KMS and the chain simulator. */
export interface FuzzTarget {
  baseUrl: string;
  apiKey: string;
  /** An SVD session token of a registered owner with a bound address, for the owner routes. */
  ownerToken: string;
  stack: PoolStack;
  close(): Promise<void>;
}

/**
 * Starts the target with test rate limits raised so far that the fuzzer's volume never meets them (a 429 is a
 * documented answer, but every case answered 429 is a case that tested nothing). The dev KMS keeps its keys in a
 * temporary directory, so the key-management routes (rotations, issuer-key revocation) act on keys nobody else uses.
 */
export async function startFuzzTarget(overrides: Record<string, string> = {}): Promise<FuzzTarget> {
  const many = '1000000';
  const stack = await startPoolStack({
    ...ownerAuthTestEnv(),
    PUBLIC_API_MAX: many,
    ADMIN_API_MAX: many,
    EMAIL_CODE_RATE_MAX_PER_IP: many,
    EMAIL_CODE_RATE_MAX_PER_IDENTIFIER: many,
    SVD_RATE_MAX_PER_IP: many,
    SVD_RATE_MAX_PER_USER: many,
    LOG_LEVEL: 'warn',
    // The boundary case of a batch is its largest: 10,000 registrations would load the machine the suite shares.
    BATCH_MAX_ITEMS: '20',
    ...overrides,
  });
  let server: Listening | undefined;
  try {
    server = await listen(createApp(stack.deps));
    const apiKey = stack.deps.config.auth.apiKey;
    // A funded pool, so registrations and transfers the fuzzer starts can reach the chain like a client's would.
    await fundAndSyncPool(stack, 4);
    const owner = await loggedInOwner(server.baseUrl, apiKey);
    const listening = server;
    return {
      baseUrl: server.baseUrl,
      apiKey,
      ownerToken: owner.token,
      stack,
      async close() {
        await listening.close();
        await stack.close();
      },
    };
  } catch (err) {
    await server?.close();
    await stack.close();
    throw err;
  }
}

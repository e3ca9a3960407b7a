import { TestWorkflowEnvironment } from '@temporalio/testing';
import { addSearchAttributesRequest } from '../../src/temporal/searchAttributes';
import { testEnv } from './testEnv';

/**
 * Temporal's time-skipping test server (the Java one provisioned for tests), with this project's search attributes:
 * its namespace starts with only the Custom*Field ones (and it lacks ListSearchAttributes), and workflows upsert ours.
 */
export async function startTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await createWithRetries(6);
  await env.connection.operatorService.addSearchAttributes(addSearchAttributesRequest(env.namespace ?? 'default'));
  return env;
}

/**
 * The SDK gives the JVM 5 s to start listening, which a busy machine (several suites starting servers at once) can
 * miss; a later try on a fresh port then succeeds.
 */
async function createWithRetries(attempts: number): Promise<TestWorkflowEnvironment> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: testEnv('timeSkippingServer') } },
      });
    } catch (err) {
      if (attempt >= attempts || !/did not start within/.test(String(err))) throw err;
      // Let the burst that starved this start pass before the next one.
      await new Promise((resolve) => setTimeout(resolve, 1_000 * attempt));
    }
  }
}

/** One time-skipping server for the enclosing describe block: started before its tests, torn down after them. */
export function timeSkippingEnvForBlock(): { readonly env: TestWorkflowEnvironment } {
  let env: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    env = await startTimeSkippingEnv();
  }, 120_000);
  afterAll(async () => {
    await env?.teardown();
  });
  return {
    get env() {
      if (!env) throw new Error('the time-skipping server has not started');
      return env;
    },
  };
}

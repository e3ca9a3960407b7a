import { TestWorkflowEnvironment } from '@temporalio/testing';
import { addSearchAttributesRequest } from '../../src/temporal/searchAttributes';
import { testEnv } from './testEnv';

/**
 * Temporal's time-skipping test server (the Java one provisioned for tests), with this project's search attributes:
 * its namespace starts with only the Custom*Field ones (and it lacks ListSearchAttributes), and workflows upsert ours.
 */
export async function startTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testEnv('timeSkippingServer') } },
  });
  await env.connection.operatorService.addSearchAttributes(addSearchAttributesRequest(env.namespace ?? 'default'));
  return env;
}

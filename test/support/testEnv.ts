/** Names of the variables through which globalSetup hands service addresses to the test files. */
export const TEST_ENV = {
  temporalAddress: 'PATCHPROOF_TEST_TEMPORAL_ADDRESS',
  mongoUri: 'PATCHPROOF_TEST_MONGODB_URI',
  redisUrl: 'PATCHPROOF_TEST_REDIS_URL',
  scratchDir: 'PATCHPROOF_TEST_SCRATCH_DIR',
  temporalCli: 'PATCHPROOF_TEST_TEMPORAL_CLI',
  timeSkippingServer: 'PATCHPROOF_TEST_TIME_SKIPPING_SERVER',
  workflowBundle: 'PATCHPROOF_TEST_WORKFLOW_BUNDLE',
  redisServer: 'PATCHPROOF_TEST_REDIS_SERVER',
  smtpPort: 'PATCHPROOF_TEST_SMTP_PORT',
  smtpCaptureUrl: 'PATCHPROOF_TEST_SMTP_CAPTURE_URL',
  prometheusUrl: 'PATCHPROOF_TEST_PROMETHEUS_URL',
  prometheusTargets: 'PATCHPROOF_TEST_PROMETHEUS_TARGETS',
  /** Why Prometheus is not there, when it is not: the tests that need it are skipped with this reason. */
  prometheusProblem: 'PATCHPROOF_TEST_PROMETHEUS_PROBLEM',
  /** Chromium for the patch page browser tests; unset when provisioning could not install it. */
  chromium: 'PATCHPROOF_TEST_CHROMIUM',
  /** The schemathesis CLI (its private venv) for the bounded fuzz test. */
  schemathesis: 'PATCHPROOF_TEST_SCHEMATHESIS',
  /** Where test processes copy their log lines and child output for the secrets scan (test/support/runCapture.ts). */
  captureDir: 'PATCHPROOF_TEST_CAPTURE_DIR',
} as const;

/**
 * One Temporal namespace per Jest worker: files in one worker run one after another, so each file's workers and
 * workflows never meet another file's. Jest worker ids run from 1 to maxWorkers (jest.config.js).
 */
export const TEST_NAMESPACES = ['test-1', 'test-2', 'test-3', 'test-4'];

export function jestWorkerId(): number {
  return Number(process.env.JEST_WORKER_ID ?? '1');
}

export function testEnv(name: keyof typeof TEST_ENV): string {
  const value = process.env[TEST_ENV[name]];
  if (!value) throw new Error(`${TEST_ENV[name]} is not set: run the integration tests through jest (globalSetup starts the services)`);
  return value;
}

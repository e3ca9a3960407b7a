/**
 * Three projects: `unit` needs no services; `workflows` runs every workflow with mocked activities on the Java
 * time-skipping server and needs no other service (with `unit`, it is `npm run test:quick`); `integration` talks to
 * real services (Temporal dev server, FerretDB or mongod, Redis, the Java time-skipping server) that
 * test/support/globalSetup.ts starts on free ports.
 * @type {import('jest').Config}
 */
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }] };

module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'workflows',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/workflows/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/workflowsGlobalSetup.ts',
      setupFiles: ['<rootDir>/test/support/silentRuntime.ts'],
      globalTeardown: '<rootDir>/test/support/workflowsGlobalTeardown.ts',
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/globalSetup.ts',
      setupFiles: ['<rootDir>/test/support/quietRuntime.ts', '<rootDir>/test/support/recordQueries.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/freshNamespace.ts'],
      globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
      slowTestThreshold: 30,
    },
  ],
  reporters: ['default', '<rootDir>/test/support/summaryReporter.js'],
  testTimeout: 60_000,
  // No forceExit: every file closes its workers, connections and servers, and the main process ends by itself.
  // A Jest worker process that loaded the Temporal SDK's native runtime can still linger ("neon threadsafe
  // function", sdk-typescript#928); Jest ends it and says "A worker process has failed to exit gracefully".
  maxWorkers: 2,
};

// Lint rules for the whole repo. Workflow code gets the sandbox rules from the Temporal samples: no Node built-ins
// or I/O libraries (side effects belong in activities) and no floating promises.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const IO_MODULES = [
  'fs',
  'path',
  'crypto',
  'http',
  'https',
  'net',
  'child_process',
  'os',
  'mongoose',
  'ioredis',
  'winston',
  'express',
  'nodemailer',
  'prom-client',
];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.data/', 'coverage/', 'ops/dev-stack/ferretdb/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.mjs', '*.js', 'ops/dev-stack/*.mjs', 'ops/cli/*.cjs', 'test/support/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'error',
      // The embedded FerretDB deadlocks on one update command with as many statements as its connection pool, so
      // bulk writes go through src/db/bulkWrites.ts, which cuts them into commands below that limit.
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.property.name=/^(bulkWrite|bulkSave)$/]',
          message: 'Send bulk writes through bulkWriteInChunks (src/db/bulkWrites.ts), which keeps each command below the server limit.',
        },
      ],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: IO_MODULES.flatMap((name) => [name, `node:${name}`]),
          patterns: [
            {
              group: ['@temporalio/activity', '@temporalio/client', '@temporalio/worker', '**/src/db/**', '**/src/logging/**'],
              message: 'Workflow code may import only workflow-safe modules.',
            },
          ],
        },
      ],
    },
  },
  {
    // Jest's asymmetric matchers (expect.any, expect.stringContaining) are typed `any`.
    files: ['test/**/*.ts'],
    // Activities are passed as functions to MockActivityEnvironment.run; they never use `this`.
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off', '@typescript-eslint/unbound-method': 'off' },
  },
  {
    // Mocked activities are async functions with the real activities' signatures; most of them answer at once.
    files: ['test/workflows/**/*.ts', 'test/support/workflowFixtures.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['**/*.mjs', '**/*.js', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', module: 'writable', require: 'readonly' },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-console': 'off' },
  },
  {
    // CommonJS entry points (the npm bin), which must run before any TypeScript loader is in place.
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);

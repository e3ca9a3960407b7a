#!/usr/bin/env node
// `npx patchproof …`: the compiled CLI when `npm run build` is newer than the source, else the source through tsx.
const { existsSync, statSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const built = path.join(root, 'dist', 'ops', 'cli', 'patchproof.js');
const source = path.join(root, 'ops', 'cli', 'patchproof.ts');
const builtIsCurrent = existsSync(built) && (!existsSync(source) || statSync(built).mtimeMs >= statSync(source).mtimeMs);
if (builtIsCurrent) {
  require(built).runCli(process.argv);
} else {
  const { spawnSync } = require('node:child_process');
  const result = spawnSync(process.execPath, ['--import', 'tsx', source, ...process.argv.slice(2)], {
    stdio: 'inherit',
    cwd: process.cwd(),
  });
  process.exit(result.status ?? 1);
}

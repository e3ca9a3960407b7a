#!/usr/bin/env node
// First step of `npm run dev` and `npm test`: runs `npm ci` when node_modules is missing or was installed from a
// different package-lock.json. Plain Node with no dependencies, because it runs before any are installed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const lockFile = path.join(root, 'package-lock.json');
const stampFile = path.join(root, 'node_modules', '.patchproof-lock.sha256');

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19) || major === 21) {
  console.error(`[deps] Node ${process.versions.node} is not supported: PatchProof needs Node 20.19+ or 22+.`);
  process.exit(1);
}

const wanted = createHash('sha256').update(readFileSync(lockFile)).digest('hex');
const have = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : null;

if (have === wanted) process.exit(0);

console.error(have === null ? '[deps] node_modules missing: running npm ci' : '[deps] package-lock.json changed: running npm ci');
const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('[deps] npm ci failed. Check access to the npm registry, then run `npm ci` by hand.');
  process.exit(result.status ?? 1);
}
writeFileSync(stampFile, `${wanted}\n`);
console.error('[deps] node modules installed');

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const INDEPENDENT_VERIFIER = path.resolve(__dirname, '..', 'independent-verifier', 'verify.mjs');

export interface IndependentVerdict {
  file: string;
  uid: string;
  status: string;
  reason?: string;
  unchecked?: string[];
}

/** Runs the independent verifier (test/independent-verifier/verify.mjs) in its own Node process, as a third party would. */
export function runIndependentVerifier(args: string[]): Promise<{ code: number; verdicts: IndependentVerdict[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [INDEPENDENT_VERIFIER, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      if (code === null) {
        reject(err ?? new Error('the independent verifier did not run'));
        return;
      }
      const verdicts = stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as IndependentVerdict);
      resolve({ code, verdicts, stderr });
    });
  });
}

/** The modules the independent verifier imports: it must need nothing but Node itself. */
export function independentVerifierImports(): string[] {
  const source = readFileSync(INDEPENDENT_VERIFIER, 'utf8');
  return [
    ...source.matchAll(/^import\s[^'"]*['"]([^'"]+)['"]/gm),
    ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]/g),
    ...source.matchAll(/\brequire\(\s*['"]([^'"]+)['"]/g),
  ].map((m) => m[1]!);
}

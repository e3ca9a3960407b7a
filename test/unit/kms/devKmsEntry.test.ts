import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { standInEnvironment } from '../../../src/config/standIns';
import { runEntry } from '../../support/processes';

describe('dev KMS entry point', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'dev-kms-entry-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('refuses to start when NODE_ENV=production, before creating any key directory', async () => {
    const dataDir = path.join(scratch, 'keys');
    const result = await runEntry(
      'ops/stand-ins/dev-kms/main.ts',
      ['--port', '0', '--data-dir', dataDir, '--api-key', 'some-key-0123456789'],
      { NODE_ENV: 'production' },
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('refusing to start with NODE_ENV=production');
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('stand-in environment', () => {
  it('reads NODE_ENV case- and space-insensitively so " Production" is still production', () => {
    expect(standInEnvironment({ NODE_ENV: ' Production ' })).toEqual({ nodeEnv: 'production' });
  });

  it('treats an unset or empty NODE_ENV as development, like the product configuration', () => {
    expect(standInEnvironment({})).toEqual({ nodeEnv: 'development' });
    expect(standInEnvironment({ NODE_ENV: '' })).toEqual({ nodeEnv: 'development' });
    expect(standInEnvironment({ NODE_ENV: 'test' })).toEqual({ nodeEnv: 'test' });
  });
});

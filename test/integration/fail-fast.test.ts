import { runEntry } from '../support/processes';
import { PRODUCTION_REQUIRED_VARIABLES as REQUIRED } from '../support/productionConfig';

describe('production start-up with missing configuration', () => {
  it.each([['api/server.ts'], ['workers/main.ts']])('%s exits non-zero with one message listing every missing variable', async (entry) => {
    const result = await runEntry(entry, [], { NODE_ENV: 'production', API_KEY: 'x'.repeat(40) });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/^Invalid configuration \(\d+ problems\):/);
    for (const name of REQUIRED.filter((n) => n !== 'API_KEY')) expect(result.stderr).toContain(name);
    expect(result.stderr).not.toContain('x'.repeat(40));
  });

  // One malformed value used to hide every other problem (the schema threw before the production rules ran).
  it('lists a malformed variable together with every missing one', async () => {
    const result = await runEntry('api/server.ts', [], { NODE_ENV: 'production', PORT: 'abc' });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/^Invalid configuration \(\d+ problems\):/);
    expect(result.stderr).toMatch(/^ {2}- PORT: /m);
    for (const name of REQUIRED) expect(result.stderr).toMatch(new RegExp(`^ {2}- ${name}: required in production$`, 'm'));
  });

  it('the API fails fast when Redis is unreachable at start', async () => {
    const result = await runEntry('api/server.ts', [], { NODE_ENV: 'development', REDIS_URL: 'redis://127.0.0.1:9', PORT: '0' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('api failed to start');
  });
});

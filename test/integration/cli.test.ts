import type { NativeConnection, Worker } from '@temporalio/worker';
import { systemCheckModel } from '../../src/db/models/systemCheck';
import { runEntry } from '../support/processes';
import { createTestWorker, startTestApi, testEnvironment, type TestApi } from '../support/stack';

const CLI = 'ops/cli/patchproof.ts';

describe('operator CLI (the real binary)', () => {
  let api: TestApi;
  let worker: Worker;
  let connection: NativeConnection;
  let running: Promise<void>;
  let env: Record<string, string>;

  beforeAll(async () => {
    api = await startTestApi();
    ({ worker, connection } = await createTestWorker(api.deps));
    running = worker.run();
    env = { ...testEnvironment(), MONGODB_URI: api.deps.config.mongo.uri };
  });

  afterAll(async () => {
    worker.shutdown();
    await running;
    await connection.close();
    await api.close();
  });

  it('runs a system check through a workflow, prints the report and exits 0', async () => {
    const result = await runEntry(CLI, ['--json', 'system-check', '--check-id', 'cli-1'], env);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { checkId: string; status: string; requestedBy: string };
    expect(report).toMatchObject({ checkId: 'cli-1', status: 'ok', requestedBy: 'cli' });
    expect(result.stderr).toContain('started workflow system-check-cli-1');
    expect(await systemCheckModel(api.deps.mongo).findById('cli-1').lean()).toMatchObject({ requestedBy: 'cli' });
  });

  it('attaches to the same run when given the same check id again', async () => {
    const result = await runEntry(CLI, ['system-check', '--check-id', 'cli-1'], env);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('attached to workflow system-check-cli-1');
    expect(result.stdout).toContain('system check cli-1: OK');
  });

  it('reports API readiness and exits 0 when every dependency is up', async () => {
    const result = await runEntry(CLI, ['health', '--api-url', api.baseUrl], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/API .*: ready/);
    expect(result.stdout).toMatch(/redis\s+up/);
  });

  it('exits 3 when the API cannot be reached', async () => {
    const result = await runEntry(CLI, ['health', '--api-url', 'http://127.0.0.1:9'], env);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('cannot reach the API');
  });

  it('exits 2 on a usage error and 4 on invalid configuration', async () => {
    expect((await runEntry(CLI, ['no-such-command'], env)).code).toBe(2);
    const badConfig = await runEntry(CLI, ['health'], { ...env, NODE_ENV: 'production' });
    expect(badConfig.code).toBe(4);
    expect(badConfig.stderr).toContain('API_KEY');
  });

  it('creates the declared indexes with ensure-indexes and reports each model', async () => {
    const result = await runEntry(CLI, ['--json', 'ensure-indexes'], env);
    expect(result.code).toBe(0);
    const reports = JSON.parse(result.stdout) as { model: string; status: string }[];
    expect(reports).toEqual(
      expect.arrayContaining([
        { model: 'Patch', status: 'ok' },
        { model: 'Utxo', status: 'ok' },
      ]),
    );
    const indexes = await api.deps.mongo.collection('patches').indexes();
    expect(indexes.map((i) => i.key)).toContainEqual({ 'anchor.txid': 1 });
  });
});

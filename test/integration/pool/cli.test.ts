import { loadConfig } from '../../../src/config';
import { POOL_SCHEDULE_IDS } from '../../../src/pool/ids';
import { utxoModel } from '../../../src/pool/models';
import { desiredSchedules, reconcileSchedules } from '../../../workers/schedules';
import type { PoolHealth } from '../../../src/pool/health';
import type { SweepReport, TopUpReport } from '../../../workflows/pool/shared';
import { runPatchproof as patchproof } from '../../support/processes';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { testEnvironment } from '../../support/stack';

describe('patchproof CLI against the real stack', () => {
  let stack: PoolStack;
  let env: Record<string, string>;

  beforeAll(async () => {
    stack = await startPoolStack(
      { UTXO_MIN_POOL: '4', UTXO_SPLIT_SIZE_SATS: '3000', DUST_THRESHOLD_SATS: '1000' },
      { blockIntervalMs: 300 },
    );
    env = testEnvironment({ ...stack.env, MONGODB_URI: stack.deps.config.mongo.uri, LOG_LEVEL: 'warn' });
    await stack.fund(stack.accounts.funding.address, 50_000);
  });
  afterAll(async () => {
    await stack?.deps.temporal.schedule
      .getHandle(POOL_SCHEDULE_IDS.topUp)
      .delete()
      .catch(() => undefined);
    await stack?.close();
  });

  it('plans a top-up with --dry-run, then runs it, printing the workflow id and the Web UI link', async () => {
    const dry = await patchproof(['--json', 'utxo', 'top-up', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain('started top-up: workflow utxo-topup-funding');
    const plan = JSON.parse(dry.stdout) as TopUpReport;
    expect(plan).toMatchObject({ outcome: 'dry_run', requestedBy: 'cli', outputCount: 3, sufficientFunds: true });
    expect(stack.signRequests()).toBe(0);

    const real = await patchproof(['utxo', 'top-up'], env);
    expect(real.code).toBe(0);
    expect(real.stderr).toMatch(/Web UI: http:\/\/127\.0\.0\.1:8233\/namespaces\/test-\d+\/workflows\/utxo-topup-funding\//);
    expect(real.stdout).toMatch(/top-up completed: pool 1\/4\n {2}split 3 × 3000 sat in [0-9a-f]{64}/);
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'available', satoshis: 3000 })).toBe(3);
  });

  it('attaches to a running operation instead of starting a second one', async () => {
    const first = await patchproof(['utxo', 'sync', '--no-wait'], env);
    const second = await patchproof(['utxo', 'sync'], env);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    // Either the second found the first still running and attached, or the first had finished and it ran anew.
    expect(second.stderr).toMatch(
      /a sync is already running as utxo-sync-funding; attaching to it|started sync: workflow utxo-sync-funding/,
    );
    expect(second.stdout).toMatch(/^sync at height \d+/);
  });

  it('sweeps with the runbook flags, dry run first, and exits 2 on a bad address', async () => {
    for (let i = 0; i < 3; i++) await stack.fund(stack.accounts.funding.address, 400 + i);
    const flags = [
      'sweep',
      '--changeAddress',
      stack.accounts.funding.address,
      '--changeKeyId',
      'funding',
      '--destinationAddress',
      stack.accounts.funding.address,
    ];
    const signsBefore = stack.signRequests();
    const dry = await patchproof(['--json', ...flags, '--dryRun'], env);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout) as SweepReport).toMatchObject({ outcome: 'dry_run', inputCount: 3, dustOnly: true });
    expect(stack.signRequests()).toBe(signsBefore);

    const real = await patchproof(['--json', ...flags], env);
    expect(real.code).toBe(0);
    const report = JSON.parse(real.stdout) as SweepReport;
    expect(report).toMatchObject({ outcome: 'completed', inputCount: 3, totalSats: 1203 });
    expect(stack.signRequests()).toBe(signsBefore + 1);

    const bad = await patchproof(['sweep', '--changeAddress', 'nope', '--changeKeyId', 'funding', '--destinationAddress', 'nope'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--changeAddress: not a P2PKH address of the test network');
  });

  it('prints pool health and exits 0 at target; exits 1 with a clear message when a top-up lacks funds', async () => {
    const health = await patchproof(['--json', 'utxo', 'health'], env);
    expect(health.code).toBe(0);
    const snapshot = JSON.parse(health.stdout) as PoolHealth;
    expect(snapshot.funding).toMatchObject({ address: stack.accounts.funding.address, network: 'test', target: 4 });
    expect(snapshot.db.available.count).toBeGreaterThanOrEqual(4);
    expect(snapshot.lastTopUp).toMatchObject({ workflowId: 'utxo-topup-funding', status: 'completed' });
    expect(snapshot.lastSweep).toMatchObject({ status: 'completed' });

    const set = await patchproof(['utxo', 'settings', '--set', 'UTXO_MIN_POOL=400'], env);
    expect(set.code).toBe(0);
    const broke = await patchproof(['utxo', 'top-up'], env);
    expect(broke.code).toBe(1);
    expect(broke.stdout).toMatch(/top-up failed: InsufficientFunds: insufficient funds for a split of 40 outputs/);
    const refused = await patchproof(['utxo', 'settings', '--set', 'API_KEY=1'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('API_KEY is not a pool setting');
  });

  it('lists the managed schedules with their next run times', async () => {
    const config = loadConfig(testEnvironment({ ...stack.env, UTXO_TOPUP_EVERY: '15m' }));
    await reconcileSchedules(stack.deps.temporal, desiredSchedules(config, stack.accounts));
    const listed = await patchproof(['--json', 'schedules', 'list'], env);
    expect(listed.code).toBe(0);
    const rows = JSON.parse(listed.stdout) as { scheduleId: string; managed: boolean; paused: boolean; nextRunTimes: string[] }[];
    const topUp = rows.find((r) => r.scheduleId === POOL_SCHEDULE_IDS.topUp);
    expect(topUp).toMatchObject({ managed: true, paused: false });
    expect(Date.parse(topUp!.nextRunTimes[0]!)).toBeGreaterThan(Date.now());
  });
});

import { desiredSchedules, reconcileSchedules } from '../../../workers/schedules';
import { SYSTEM_CHECK_SCHEDULE_ID } from '../../../src/system/ids';
import type { DoctorCheck } from '../../../ops/cli/doctor';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { runPatchproof } from '../../support/processes';
import { testEnvironment } from '../../support/stack';

/** `patchproof doctor` as an operator runs it, against the test stack: the real KMS stand-in and chain simulator. */
describe('patchproof doctor', () => {
  let stack: PoolStack;
  let env: Record<string, string>;

  beforeAll(async () => {
    stack = await startPoolStack({ SYSTEM_CHECK_EVERY: '1h' }, { inProcessWorker: false });
    env = testEnvironment({
      ...stack.env,
      MONGODB_URI: stack.deps.config.mongo.uri,
      REDIS_URL: stack.deps.config.redis.url,
      SYSTEM_CHECK_EVERY: '1h',
      LOG_LEVEL: 'warn',
    });
    // What a main worker does at start: the doctor compares the server's schedules with this configuration.
    await reconcileSchedules(stack.deps.temporal, desiredSchedules(stack.deps.config, stack.accounts));
  });

  afterAll(async () => {
    await stack.deps.temporal.schedule
      .getHandle(SYSTEM_CHECK_SCHEDULE_ID)
      .delete()
      .catch(() => undefined);
    await stack.close();
  });

  const byName = (checks: DoctorCheck[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

  it('passes every check on a healthy deployment, printing the active keys and exiting 0', async () => {
    const result = await runPatchproof(['--json', 'doctor'], env);
    expect(result.stderr).toBe('');
    const checks = byName(JSON.parse(result.stdout) as DoctorCheck[]);
    expect(Object.values(checks).filter((c) => !c.ok)).toEqual([]);
    expect(Object.keys(checks)).toEqual(
      expect.arrayContaining(['mongodb', 'redis', 'temporal', 'search-attributes', 'kms-issuer', 'kms-funding', 'chain']),
    );
    expect(checks[`schedule ${SYSTEM_CHECK_SCHEDULE_ID}`]).toMatchObject({ ok: true, detail: 'as configured' });
    expect(checks['kms-funding']!.detail).toContain(stack.kms.keys.describe('funding').pubKeyHex);
    expect(result.code).toBe(0);

    const human = await runPatchproof(['doctor'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ok\s+mongodb/m);
    expect(human.stdout).toContain('all checks passed');
  });

  it('reports a missing schedule with its fix and exits 1', async () => {
    await stack.deps.temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID).delete();
    const result = await runPatchproof(['doctor'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^PROBLEM schedule ${SYSTEM_CHECK_SCHEDULE_ID}\\s+missing`, 'm'));
    expect(result.stdout).toMatch(/fix: restart a main worker/);
    expect(result.stdout).toContain('1 problem found');
    await reconcileSchedules(stack.deps.temporal, desiredSchedules(stack.deps.config, stack.accounts));
  });

  it('reports a paused schedule as drift', async () => {
    await stack.deps.temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID).pause('paused by hand');
    const result = await runPatchproof(['--json', 'doctor'], env);
    expect(result.code).toBe(1);
    expect(byName(JSON.parse(result.stdout) as DoctorCheck[])[`schedule ${SYSTEM_CHECK_SCHEDULE_ID}`]).toMatchObject({
      ok: false,
      detail: 'paused (paused by hand)',
    });
    await stack.deps.temporal.schedule.getHandle(SYSTEM_CHECK_SCHEDULE_ID).unpause();
  });

  it('reports an unreachable KMS without printing its API key, and still checks everything else', async () => {
    const result = await runPatchproof(['--json', 'doctor'], { ...env, KMS_SIGN_URL: 'http://127.0.0.1:9' });
    expect(result.code).toBe(1);
    const checks = byName(JSON.parse(result.stdout) as DoctorCheck[]);
    expect(checks['kms-issuer']).toMatchObject({ ok: false, fix: expect.stringContaining('KMS_SIGN_URL') });
    expect(checks['kms-funding']).toMatchObject({ ok: false });
    expect(checks.mongodb).toMatchObject({ ok: true });
    expect(checks.chain).toMatchObject({ ok: true });
    expect(result.stdout + result.stderr).not.toContain(env.KMS_API_KEY);
  });
});

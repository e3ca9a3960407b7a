import { checkIdFromWorkflowId, isValidCheckId, systemCheckWorkflowId } from '../../../src/system/ids';

describe('system-check workflow ids', () => {
  it('builds the id from a safe check id', () => {
    expect(systemCheckWorkflowId('nightly_1')).toBe('system-check-nightly_1');
  });

  it('derives a valid check id from a schedule-started workflow id', () => {
    const derived = checkIdFromWorkflowId('system-check-scheduled-2026-11-27T02:00:00Z');
    expect(derived).toBe('scheduled-2026-11-27T02-00-00Z');
    expect(isValidCheckId(derived)).toBe(true);
  });

  it('refuses ids that could collide with or escape the prefix', () => {
    for (const bad of ['', 'a b', 'a/b', 'x'.repeat(65), '$where']) {
      expect(isValidCheckId(bad)).toBe(false);
      expect(() => systemCheckWorkflowId(bad)).toThrow(RangeError);
    }
  });
});

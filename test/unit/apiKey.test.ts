import { createApiKeyVerifier } from '../../api/middleware/apiKey';
import { checkIdFromWorkflowId, isValidCheckId, systemCheckWorkflowId } from '../../src/system/ids';

describe('API key verifier', () => {
  const verify = createApiKeyVerifier('correct-key-0123456789');

  it('accepts exactly the configured key', () => {
    expect(verify('correct-key-0123456789')).toBe(true);
  });

  // Predecessor defect §14.21: its compare returned early on a length mismatch, leaking the key length.
  it('rejects prefixes, extensions, other lengths and absence through the same fixed-size comparison', () => {
    for (const candidate of ['correct-key-012345678', 'correct-key-01234567890', '', 'x', 'correct-key-0123456789 ', undefined]) {
      expect(verify(candidate)).toBe(false);
    }
  });
});

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

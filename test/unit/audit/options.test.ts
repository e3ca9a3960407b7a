import { auditOptions } from '../../../ops/cli/audit';
import { CliFailure, EXIT } from '../../../ops/cli/common';
import { resultDifferences } from '../../../src/audit/workflowResults';

const config = { anchoring: { confirmations: 6 } } as Parameters<typeof auditOptions>[0];
const flags = { stuckAfter: '60', concurrency: '16', workflows: true, maxFindings: '1000' };

describe('audit options', () => {
  it('defaults to the 24 hours before now and waits 10 minutes a confirmation, plus one block, for a proof', () => {
    const now = new Date('2026-12-07T12:00:00Z');
    const options = auditOptions(config, flags, now);
    expect(options.to).toEqual(now);
    expect(options.from).toEqual(new Date('2026-12-06T12:00:00Z'));
    expect(options.unprovenAfterMs).toBe(70 * 60_000);
    expect(options.stuckAfterMs).toBe(60 * 60_000);
  });

  it('reads a date alone as midnight UTC and refuses a window that ends before it starts', () => {
    expect(auditOptions(config, { ...flags, from: '2026-12-01', to: '2026-12-02' }).from.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    const refused = (extra: Record<string, string>) => {
      try {
        auditOptions(config, { ...flags, ...extra });
        return null;
      } catch (err) {
        return err instanceof CliFailure ? err.exitCode : err;
      }
    };
    expect(refused({ from: '2026-12-02', to: '2026-12-01' })).toBe(EXIT.usage);
    expect(refused({ from: 'yesterday' })).toBe(EXIT.usage);
    expect(refused({ concurrency: '0' })).toBe(EXIT.usage);
    expect(refused({ unprovenAfter: '-1' })).toBe(EXIT.usage);
  });
});

describe('workflow result comparison', () => {
  it('names each field where the workflow result and the database differ, and nothing when they agree', () => {
    const stored = { uid: 'PP-1', recordHash: 'aa', txid: 'bb', vout: 0 };
    expect(resultDifferences({ ...stored, proof: {}, confirmations: 3 }, stored)).toEqual([]);
    expect(resultDifferences({ ...stored, txid: 'cc' }, stored)).toEqual(['txid: workflow "cc" ≠ database "bb"']);
    expect(resultDifferences(undefined, { txid: 'bb' })).toEqual(['txid: workflow null ≠ database "bb"']);
  });
});

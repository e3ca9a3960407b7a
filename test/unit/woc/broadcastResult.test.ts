import {
  mandatoryScriptFailure,
  NODE_REASONS,
  nonMandatoryScriptFailure,
  SCRIPT_ERRORS,
  WOC_REJECTION_PREFIX as SIMULATOR_PREFIX,
} from '../../../ops/stand-ins/chain-simulator/nodeReasons';
import { classifyBroadcastReason, nodeReasonOf, WOC_REJECTION_PREFIX } from '../../../src/woc/broadcastResult';

describe('broadcast reason classification', () => {
  it.each([
    ['Transaction already in the mempool', 'success', true],
    ['257: txn-already-known', 'success', true],
    ['18: txn-already-in-mempool', 'success', true],
    ['txn already in mempool', 'success', true],
    ['Transaction already known', 'success', true],
    ['Missing inputs', 'missing_inputs', false],
    ['16: bad-txns-inputs-missingorspent', 'missing_inputs', false],
    ['258: txn-mempool-conflict', 'mempool_conflict', false],
    ['258: txn-double-spend-detected', 'mempool_conflict', false],
    ['64: dust', 'dust', false],
    ['66: mempool min fee not met', 'insufficient_fee', false],
    ['66: min relay fee not met', 'insufficient_fee', false],
    ['66: insufficient priority', 'insufficient_fee', false],
    ['transaction fee is too low', 'insufficient_fee', false],
    ['16: mandatory-script-verify-flag-failed (Script failed an OP_EQUALVERIFY operation)', 'script_verify_failed', false],
    ['64: non-mandatory-script-verify-flag (Non-canonical signature: S value is unnecessarily high)', 'script_verify_failed', false],
    ['64: too-long-mempool-chain', 'too_long_mempool_chain', false],
    ['16: bad-txns-in-belowout', 'other', false],
    ['TX decode failed', 'other', false],
    ['64: industrial-dustbin', 'other', false],
  ])('%s → %s', (reason, outcome, alreadyKnown) => {
    expect(classifyBroadcastReason(reason)).toEqual({ outcome, alreadyKnown });
  });

  it('classifies every text the chain simulator sends as the client expects', () => {
    const expected: Record<string, string> = {
      [NODE_REASONS.alreadyInMempool]: 'success',
      [NODE_REASONS.alreadyKnown]: 'success',
      [NODE_REASONS.missingInputs]: 'missing_inputs',
      [NODE_REASONS.mempoolConflict]: 'mempool_conflict',
      [NODE_REASONS.dust]: 'dust',
      [NODE_REASONS.minFeeNotMet]: 'insufficient_fee',
      [NODE_REASONS.tooLongMempoolChain]: 'too_long_mempool_chain',
      [mandatoryScriptFailure(SCRIPT_ERRORS.nullFail)]: 'script_verify_failed',
      [nonMandatoryScriptFailure(SCRIPT_ERRORS.highS)]: 'script_verify_failed',
    };
    for (const reason of Object.values(NODE_REASONS)) expected[reason] ??= 'other';
    for (const [reason, outcome] of Object.entries(expected))
      expect([reason, classifyBroadcastReason(reason).outcome]).toEqual([reason, outcome]);
  });

  it('strips the WOC wrapper from JSON-string and plain bodies alike', () => {
    expect(SIMULATOR_PREFIX).toBe(WOC_REJECTION_PREFIX);
    expect(nodeReasonOf('"unexpected response code 500: 258: txn-mempool-conflict"')).toBe('258: txn-mempool-conflict');
    expect(nodeReasonOf('unexpected response code 500: Missing inputs\n')).toBe('Missing inputs');
    expect(nodeReasonOf('"Missing inputs"')).toBe('Missing inputs');
  });
});

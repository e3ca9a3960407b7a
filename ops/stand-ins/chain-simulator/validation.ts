import { type LockingScript, Spend, Transaction } from '@bsv/sdk';
import { p2pkhCheckContext, verifiesAsPlainP2pkh } from './p2pkhFastPath';
import { mandatoryScriptFailure, NODE_REASONS, nodeScriptError, nonMandatoryScriptFailure, SCRIPT_ERRORS } from './nodeReasons';

/**
 * Validation of a broadcast against the chain state, with no side effects: the caller applies an accepted result.
 * The checks run in the node's order (bsv-notes §2.2); as in the node's AcceptToMemoryPool the scripts come last,
 * after the fee and chain-length checks, so the cheap rejections never pay for signature verification. Plain P2PKH
 * spends are verified natively (p2pkhFastPath.ts); any other script, and any spend that fails there, goes through
 * the SDK's interpreter, which gives the node's reason.
 */

export interface SpendableOutput {
  satoshis: number;
  lockingScript: LockingScript;
}

export interface ValidationView {
  /** Whether the node already has this txid: in its mempool, or mined with an output still unspent. */
  knownState(txid: string): 'in-mempool' | 'mined-unspent' | 'unknown';
  /** The mempool tx spending this outpoint, if any. */
  mempoolSpender(txid: string, vout: number): string | undefined;
  /** An output this node can see and that no mined tx has spent. */
  spendableOutput(txid: string, vout: number): SpendableOutput | undefined;
  isInMempool(txid: string): boolean;
  /** In-mempool parents of a mempool tx. */
  mempoolParents(txid: string): string[];
}

export interface ValidationPolicy {
  feeRateSatPerKb: number;
  /** Reject when a tx would have this many unconfirmed ancestors or more. */
  ancestorLimit: number;
  maxTxSizeBytes: number;
}

export const DEFAULT_POLICY: ValidationPolicy = {
  feeRateSatPerKb: 1,
  // bsv-notes §2.2 step 9: 25 to be conservative (the node's own default is 10,000).
  ancestorLimit: 25,
  maxTxSizeBytes: 10_000_000,
};

export type ValidationStage =
  'decode' | 'structure' | 'already-known' | 'conflict' | 'inputs' | 'standard' | 'amounts' | 'fee' | 'chain' | 'script';

export type ValidationResult =
  | { ok: true; tx: Transaction; txid: string; size: number; fee: number; mempoolParents: string[] }
  | { ok: false; stage: ValidationStage; reason: string; txid?: string };

const NULL_TXID = '0'.repeat(64);
const NULL_VOUT = 0xffffffff;
const MAX_MONEY = 21_000_000 * 100_000_000;

// Post-Genesis policy flags for version-1 txs, and the consensus subset a failure is re-checked against: a tx that
// fails only the policy flags is "non-mandatory" (64), anything else "mandatory" (16), as CheckInputs reports.
const STANDARD_FLAGS = [
  'GENESIS',
  'UTXO_AFTER_GENESIS',
  'STRICTENC',
  'SIGHASH_FORKID',
  'DERSIG',
  'LOW_S',
  'NULLFAIL',
  'MINIMALDATA',
  'SIGPUSHONLY',
  'CLEANSTACK',
  'NULLDUMMY',
  'MINIMALIF',
];
const MANDATORY_FLAGS = ['GENESIS', 'UTXO_AFTER_GENESIS', 'STRICTENC', 'SIGHASH_FORKID', 'NULLFAIL'];
// Chronicle relaxes LOW_S, MINIMALDATA, NULLFAIL, CLEANSTACK and SIGPUSHONLY for tx version > 1 only (notes §1.7).
const CHRONICLE_FLAGS = ['GENESIS', 'UTXO_AFTER_GENESIS', 'UTXO_AFTER_CHRONICLE', 'STRICTENC', 'SIGHASH_FORKID', 'DERSIG', 'NULLDUMMY'];

export function isDataScript(script: LockingScript): boolean {
  const [first, second] = script.chunks;
  return first?.op === 0x6a || (first?.op === 0x00 && second?.op === 0x6a);
}

/** Strict decode: the SDK parser tolerates truncated or trailing bytes, the node does not. */
export function decodeTransaction(rawHex: unknown): Transaction | undefined {
  if (typeof rawHex !== 'string' || rawHex.length < 20 || rawHex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(rawHex)) return undefined;
  try {
    const tx = Transaction.fromHex(rawHex);
    const reserialized = new Transaction(tx.version, tx.inputs, tx.outputs, tx.lockTime).toHex();
    return reserialized === rawHex.toLowerCase() ? tx : undefined;
  } catch {
    return undefined;
  }
}

export function validateTransaction(rawHex: unknown, view: ValidationView, policy: ValidationPolicy): ValidationResult {
  const tx = decodeTransaction(rawHex);
  if (!tx) return { ok: false, stage: 'decode', reason: NODE_REASONS.decodeFailed };
  const txid = tx.id('hex');
  const reject = (stage: ValidationStage, reason: string): ValidationResult => ({ ok: false, stage, reason, txid });
  const outpoints = tx.inputs.map((input) => ({ txid: input.sourceTXID ?? '', vout: input.sourceOutputIndex }));

  if (tx.inputs.length === 0) return reject('structure', NODE_REASONS.vinEmpty);
  if (tx.outputs.length === 0) return reject('structure', NODE_REASONS.voutEmpty);
  const isNull = (o: { txid: string; vout: number }) => o.txid === NULL_TXID && o.vout === NULL_VOUT;
  if (outpoints.length === 1 && isNull(outpoints[0]!)) return reject('structure', NODE_REASONS.coinbase);
  if (outpoints.some(isNull)) return reject('structure', NODE_REASONS.prevoutNull);
  if (new Set(outpoints.map((o) => `${o.txid}:${o.vout}`)).size !== outpoints.length) {
    return reject('structure', NODE_REASONS.inputsDuplicate);
  }
  if (tx.outputs.some((o) => (o.satoshis ?? 0) > MAX_MONEY)) return reject('structure', NODE_REASONS.voutTooLarge);

  const known = view.knownState(txid);
  if (known === 'in-mempool') return reject('already-known', NODE_REASONS.alreadyInMempool);
  if (known === 'mined-unspent') return reject('already-known', NODE_REASONS.alreadyKnown);

  if (outpoints.some((o) => view.mempoolSpender(o.txid, o.vout) !== undefined)) return reject('conflict', NODE_REASONS.mempoolConflict);
  const spent: SpendableOutput[] = [];
  for (const o of outpoints) {
    const output = view.spendableOutput(o.txid, o.vout);
    if (!output) return reject('inputs', NODE_REASONS.missingInputs);
    spent.push(output);
  }

  const size = (rawHex as string).length / 2;
  if (size > policy.maxTxSizeBytes) return reject('standard', NODE_REASONS.txSize);
  if (tx.outputs.some((o) => (o.satoshis ?? 0) < 1 && !isDataScript(o.lockingScript))) return reject('standard', NODE_REASONS.dust);

  const totalIn = spent.reduce((sum, o) => sum + o.satoshis, 0);
  const totalOut = tx.outputs.reduce((sum, o) => sum + (o.satoshis ?? 0), 0);
  if (totalIn < totalOut) return reject('amounts', NODE_REASONS.inBelowOut);
  const fee = totalIn - totalOut;
  if (fee < Math.ceil((size * policy.feeRateSatPerKb) / 1000)) return reject('fee', NODE_REASONS.minFeeNotMet);

  const mempoolParents = [...new Set(outpoints.map((o) => o.txid).filter((id) => view.isInMempool(id)))];
  if (countAncestors(mempoolParents, view, policy.ancestorLimit) >= policy.ancestorLimit) {
    return reject('chain', NODE_REASONS.tooLongMempoolChain);
  }

  const p2pkh = p2pkhCheckContext();
  for (let i = 0; i < tx.inputs.length; i++) {
    if (verifiesAsPlainP2pkh(tx, i, spent[i]!, p2pkh)) continue;
    const failure = scriptFailure(tx, i, spent[i]!);
    if (failure) return reject('script', failure);
  }
  return { ok: true, tx, txid, size, fee, mempoolParents };
}

/** Distinct unconfirmed ancestors, counting stops at `limit` since only "at least the limit" matters. */
function countAncestors(parents: string[], view: ValidationView, limit: number): number {
  const seen = new Set<string>();
  const queue = [...parents];
  while (queue.length > 0 && seen.size < limit) {
    const txid = queue.pop()!;
    if (seen.has(txid)) continue;
    seen.add(txid);
    queue.push(...view.mempoolParents(txid));
  }
  return seen.size;
}

function runSpend(tx: Transaction, inputIndex: number, output: SpendableOutput, verifyFlags: string[]): string | undefined {
  const input = tx.inputs[inputIndex]!;
  try {
    new Spend({
      sourceTXID: input.sourceTXID!,
      sourceOutputIndex: input.sourceOutputIndex,
      sourceSatoshis: output.satoshis,
      lockingScript: output.lockingScript,
      transactionVersion: tx.version,
      otherInputs: tx.inputs.filter((_, j) => j !== inputIndex),
      outputs: tx.outputs,
      inputIndex,
      unlockingScript: input.unlockingScript!,
      inputSequence: input.sequence ?? 0xffffffff,
      lockTime: tx.lockTime,
      verifyFlags,
    }).validate();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function scriptFailure(tx: Transaction, inputIndex: number, output: SpendableOutput): string | undefined {
  if (tx.version > 1) {
    const failure = runSpend(tx, inputIndex, output, CHRONICLE_FLAGS);
    return failure === undefined ? undefined : mandatoryScriptFailure(nodeScriptError(failure));
  }
  const failure = runSpend(tx, inputIndex, output, STANDARD_FLAGS);
  if (failure === undefined) return undefined;
  if (runSpend(tx, inputIndex, output, MANDATORY_FLAGS) !== undefined) return mandatoryScriptFailure(nodeScriptError(failure));
  // The SDK reports a high S as a format error; passing without LOW_S pins it down.
  const withoutLowS = STANDARD_FLAGS.filter((flag) => flag !== 'LOW_S');
  const reason = runSpend(tx, inputIndex, output, withoutLowS) === undefined ? SCRIPT_ERRORS.highS : nodeScriptError(failure);
  return nonMandatoryScriptFailure(reason);
}

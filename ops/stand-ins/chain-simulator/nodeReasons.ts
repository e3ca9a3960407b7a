/**
 * Rejection texts of a bitcoin-sv node as WhatsOnChain relays them (reference/bsv-notes.md §2.2 and §3.4). WOC
 * answers HTTP 400 with a JSON string body: `"unexpected response code 500: <reason>"`.
 */
export const WOC_REJECTION_PREFIX = 'unexpected response code 500: ';

export const NODE_REASONS = {
  decodeFailed: 'TX decode failed',
  vinEmpty: '16: bad-txns-vin-empty',
  voutEmpty: '16: bad-txns-vout-empty',
  inputsDuplicate: '16: bad-txns-inputs-duplicate',
  coinbase: '16: coinbase',
  prevoutNull: '16: bad-txns-prevout-null',
  voutTooLarge: '16: bad-txns-vout-toolarge',
  alreadyInMempool: 'Transaction already in the mempool',
  alreadyKnown: '257: txn-already-known',
  mempoolConflict: '258: txn-mempool-conflict',
  missingInputs: 'Missing inputs',
  dust: '64: dust',
  txSize: '64: tx-size',
  inBelowOut: '16: bad-txns-in-belowout',
  minFeeNotMet: '66: mempool min fee not met',
  tooLongMempoolChain: '64: too-long-mempool-chain',
} as const;

/** A script failure under the consensus (mandatory) flags. */
export function mandatoryScriptFailure(scriptError: string): string {
  return `16: mandatory-script-verify-flag-failed (${scriptError})`;
}

/** A script that passes consensus but breaks policy, e.g. a high-S signature in a version-1 transaction. */
export function nonMandatoryScriptFailure(scriptError: string): string {
  return `64: non-mandatory-script-verify-flag (${scriptError})`;
}

/** The node's `ScriptErrorString` texts that a P2PKH or data spend can produce. */
export const SCRIPT_ERRORS = {
  evalFalse: 'Script evaluated without error but finished with a false/empty top stack element',
  verify: 'Script failed an OP_VERIFY operation',
  equalVerify: 'Script failed an OP_EQUALVERIFY operation',
  checkSigVerify: 'Script failed an OP_CHECKSIGVERIFY operation',
  numEqualVerify: 'Script failed an OP_NUMEQUALVERIFY operation',
  nullFail: 'Signature must be zero for failed CHECK(MULTI)SIG operation',
  highS: 'Non-canonical signature: S value is unnecessarily high',
  derSig: 'Non-canonical DER signature',
  hashType: 'Signature hash type missing or not understood',
  forkId: 'Signature must use SIGHASH_FORKID',
  pubKeyType: 'Public key is neither compressed or uncompressed',
  sigPushOnly: 'Only non-push operators allowed in signatures',
  cleanStack: 'Extra items left on stack after execution',
  minimalData: 'Data push larger than necessary',
  stackSize: 'Operation not valid with the current stack size',
  opReturn: 'OP_RETURN was encountered',
  badOpcode: 'Opcode missing or not understood',
  disabledOpcode: 'Attempted to use a disabled opcode',
  unknown: 'unknown error',
} as const;

/** Maps an `@bsv/sdk` ScriptEvaluationError message to the node's text for the same failure. */
export function nodeScriptError(sdkMessage: string): string {
  const rules: [RegExp, string][] = [
    [/requires failing signatures to be empty/, SCRIPT_ERRORS.nullFail],
    [/OP_EQUALVERIFY requires/, SCRIPT_ERRORS.equalVerify],
    [/OP_CHECKSIGVERIFY requires that a valid signature/, SCRIPT_ERRORS.checkSigVerify],
    [/OP_NUMEQUALVERIFY requires/, SCRIPT_ERRORS.numEqualVerify],
    [/OP_VERIFY requires the top stack value/, SCRIPT_ERRORS.verify],
    [/top stack element must be truthy/, SCRIPT_ERRORS.evalFalse],
    [/low S value/, SCRIPT_ERRORS.highS],
    [/signature format is invalid/, SCRIPT_ERRORS.derSig],
    [/SIGHASH_FORKID/, SCRIPT_ERRORS.forkId],
    [/hash type is invalid/, SCRIPT_ERRORS.hashType],
    [/public key/i, SCRIPT_ERRORS.pubKeyType],
    [/only contain push operations/, SCRIPT_ERRORS.sigPushOnly],
    [/clean stack rule/, SCRIPT_ERRORS.cleanStack],
    [/not minimally-encoded/, SCRIPT_ERRORS.minimalData],
    [/empty stack|Stack underflow|requires at least|requires at oeast/, SCRIPT_ERRORS.stackSize],
    [/OP_RETURN/, SCRIPT_ERRORS.opReturn],
    [/is disabled/, SCRIPT_ERRORS.disabledOpcode],
    [/Invalid opcode|Missing opcode|Malformed push/, SCRIPT_ERRORS.badOpcode],
  ];
  return rules.find(([pattern]) => pattern.test(sdkMessage))?.[1] ?? SCRIPT_ERRORS.unknown;
}

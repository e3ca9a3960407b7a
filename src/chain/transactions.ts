import { LockingScript, OP, P2PKH, Script, Transaction } from '@bsv/sdk';
import { InvalidAddressError, parseP2pkhAddress, type Network } from './addresses';
import { feeForSize, minWorthwhileChange, P2PKH_LOCKING_SCRIPT_BYTES, P2PKH_UNLOCKING_SCRIPT_MAX_BYTES, transactionSize } from './fees';

/** An output we can spend: a pool UTXO, with the KMS key that controls it. */
export interface SpendableOutput {
  txid: string;
  vout: number;
  satoshis: number;
  lockingScriptHex: string;
  keyIdentifier: string;
}

export type PlannedOutput = { kind: 'p2pkh'; address: string; satoshis: number } | { kind: 'data'; pushes: number[][] };

export interface BuildTransactionInput {
  inputs: SpendableOutput[];
  outputs: PlannedOutput[];
  /** Where change goes; without it every satoshi not paid out becomes fee. */
  changeAddress?: string;
  /** Change below this is not worth an output (it would cost more to spend than it holds); it goes to fee. */
  minChangeSats: number;
  feeRateSatPerKb: number;
  network: Network;
}

export interface UnsignedTransaction {
  tx: Transaction;
  inputs: SpendableOutput[];
  fee: number;
  /** Index of the change output, or null when there is none. */
  changeVout: number | null;
  changeSatoshis: number;
  /** Size used for the fee: the signed size can only be smaller (signatures are 71–72 bytes, not 73). */
  estimatedSize: number;
}

export class InsufficientFundsError extends Error {
  constructor(
    readonly needed: number,
    readonly available: number,
  ) {
    super(`insufficient funds: need ${needed} sat, have ${available} sat`);
    this.name = 'InsufficientFundsError';
  }
}

export class InvalidTransactionPlanError extends Error {
  constructor(reason: string) {
    super(`invalid transaction plan: ${reason}`);
    this.name = 'InvalidTransactionPlanError';
  }
}

/** `OP_FALSE OP_RETURN <push>…`: provably unspendable, so it may carry 0 satoshis. */
export function dataOutputScript(pushes: number[][]): LockingScript {
  const script = new Script().writeOpCode(OP.OP_FALSE).writeOpCode(OP.OP_RETURN);
  for (const push of pushes) script.writeBin(push);
  return new LockingScript(script.chunks);
}

export function p2pkhOutputScript(address: string, network: Network): LockingScript {
  return new P2PKH().lock(parseP2pkhAddress(address, network));
}

/** An address that is malformed or of the other network makes the plan invalid: retrying cannot fix it. */
function planOutputScript(address: string, network: Network, role: string): LockingScript {
  try {
    return p2pkhOutputScript(address, network);
  } catch (err) {
    if (err instanceof InvalidAddressError) throw new InvalidTransactionPlanError(`${role} address: ${err.message}`);
    throw err;
  }
}

const TXID = /^[0-9a-f]{64}$/;

/**
 * Builds an unsigned version-1 transaction with an explicit fee rate (the SDK is never asked for one, so nothing
 * reaches the network). No hidden I/O: inputs, rates and addresses are passed in.
 */
export function buildTransaction(plan: BuildTransactionInput): UnsignedTransaction {
  if (plan.inputs.length === 0) throw new InvalidTransactionPlanError('no inputs');
  if (plan.outputs.length === 0) throw new InvalidTransactionPlanError('no outputs');
  const seen = new Set<string>();
  for (const input of plan.inputs) {
    if (!TXID.test(input.txid)) throw new InvalidTransactionPlanError(`bad txid ${input.txid}`);
    if (!Number.isInteger(input.vout) || input.vout < 0) throw new InvalidTransactionPlanError('bad vout');
    if (!Number.isSafeInteger(input.satoshis) || input.satoshis <= 0) throw new InvalidTransactionPlanError('bad input amount');
    const outpoint = `${input.txid}:${input.vout}`;
    if (seen.has(outpoint)) throw new InvalidTransactionPlanError(`input ${outpoint} used twice`);
    seen.add(outpoint);
  }

  const outputs = plan.outputs.map((output) => {
    if (output.kind === 'data') return { lockingScript: dataOutputScript(output.pushes), satoshis: 0 };
    // BSV's dust limit is 1 satoshi for spendable outputs.
    if (!Number.isSafeInteger(output.satoshis) || output.satoshis < 1)
      throw new InvalidTransactionPlanError('a P2PKH output needs at least 1 satoshi');
    return { lockingScript: planOutputScript(output.address, plan.network, 'output'), satoshis: output.satoshis };
  });
  const changeScript = plan.changeAddress ? planOutputScript(plan.changeAddress, plan.network, 'change') : undefined;

  const available = plan.inputs.reduce((sum, input) => sum + input.satoshis, 0);
  const paidOut = outputs.reduce((sum, output) => sum + output.satoshis, 0);
  const unlockingSizes = plan.inputs.map(() => P2PKH_UNLOCKING_SCRIPT_MAX_BYTES);
  const lockingSizes = outputs.map((output) => output.lockingScript.toBinary().length);

  const sizeWithoutChange = transactionSize(unlockingSizes, lockingSizes);
  const feeWithoutChange = feeForSize(sizeWithoutChange, plan.feeRateSatPerKb);
  if (available < paidOut + feeWithoutChange) throw new InsufficientFundsError(paidOut + feeWithoutChange, available);

  let changeSatoshis = 0;
  let fee = available - paidOut;
  let estimatedSize = sizeWithoutChange;
  if (changeScript) {
    const sizeWithChange = transactionSize(unlockingSizes, [...lockingSizes, P2PKH_LOCKING_SCRIPT_BYTES]);
    const feeWithChange = feeForSize(sizeWithChange, plan.feeRateSatPerKb);
    const change = available - paidOut - feeWithChange;
    // Whatever the caller asks, change that would cost more to spend than it holds is never made.
    if (change >= Math.max(plan.minChangeSats, minWorthwhileChange(plan.feeRateSatPerKb))) {
      changeSatoshis = change;
      fee = feeWithChange;
      estimatedSize = sizeWithChange;
    }
  }

  const tx = new Transaction(1, [], [], 0);
  for (const input of plan.inputs) {
    tx.addInput({ sourceTXID: input.txid, sourceOutputIndex: input.vout, sequence: 0xffffffff });
  }
  for (const output of outputs) tx.addOutput(output);
  let changeVout: number | null = null;
  if (changeSatoshis > 0 && changeScript) {
    changeVout = tx.outputs.length;
    tx.addOutput({ lockingScript: changeScript, satoshis: changeSatoshis });
  }
  return { tx, inputs: plan.inputs, fee, changeVout, changeSatoshis, estimatedSize };
}

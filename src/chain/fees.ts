/**
 * Transaction size and fee arithmetic for the transactions we build: P2PKH inputs, P2PKH and data outputs.
 * Pure, so the fee and dust rules can be checked as properties over generated inputs.
 */

/** Upper bound of a P2PKH unlocking script: push of a 72-byte DER signature + sighash byte, push of a 33-byte key. */
export const P2PKH_UNLOCKING_SCRIPT_MAX_BYTES = 1 + 73 + 1 + 33;
export const P2PKH_LOCKING_SCRIPT_BYTES = 25;

export function varIntSize(n: number): number {
  if (n < 0xfd) return 1;
  if (n <= 0xffff) return 3;
  if (n <= 0xffffffff) return 5;
  return 9;
}

/** Serialized size of a version-1 transaction, given its inputs' unlocking-script sizes and outputs' locking-script sizes. */
export function transactionSize(unlockingScriptSizes: number[], lockingScriptSizes: number[]): number {
  const inputs = unlockingScriptSizes.reduce((sum, len) => sum + 32 + 4 + varIntSize(len) + len + 4, 0);
  const outputs = lockingScriptSizes.reduce((sum, len) => sum + 8 + varIntSize(len) + len, 0);
  return 4 + varIntSize(unlockingScriptSizes.length) + inputs + varIntSize(lockingScriptSizes.length) + outputs + 4;
}

/** The node's rule: fee = ceil(size × rate / 1000), with the rate in satoshis per kilobyte (1000 bytes). */
export function feeForSize(sizeBytes: number, satPerKb: number): number {
  if (!Number.isFinite(satPerKb) || satPerKb < 0) throw new RangeError('fee rate must be a non-negative number');
  return Math.ceil((sizeBytes * satPerKb) / 1000);
}

/**
 * Change worth less than the fee of spending it later is left to the miner instead of becoming dust: the fee of one
 * P2PKH input (outpoint, sequence, script length and unlocking script: 41 + 108 bytes), plus one satoshi.
 */
export function minWorthwhileChange(feePerKb: number): number {
  return Math.max(1, feeForSize(P2PKH_UNLOCKING_SCRIPT_MAX_BYTES + 41, feePerKb) + 1);
}

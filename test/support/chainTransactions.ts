import { Curve, LockingScript, OP, P2PKH, PrivateKey, Transaction, TransactionSignature, UnlockingScript } from '@bsv/sdk';

/**
 * Transactions for chain tests, signed with keys made at test time (never stored). Amounts are explicit so each test
 * states the fee it pays.
 */

export interface Coin {
  txid: string;
  vout: number;
  satoshis: number;
  key: PrivateKey;
}

export interface Payment {
  lockingScript: LockingScript;
  satoshis: number;
}

export function newKey(): PrivateKey {
  return PrivateKey.fromRandom();
}

export function testnetAddress(key: PrivateKey): string {
  return key.toAddress('testnet');
}

export function payTo(key: PrivateKey, satoshis: number): Payment {
  return { lockingScript: new P2PKH().lock(key.toPublicKey().toHash()), satoshis };
}

export function dataOutput(bytes: number[], satoshis = 0): Payment {
  return { lockingScript: new LockingScript([{ op: OP.OP_FALSE }, { op: OP.OP_RETURN }, { op: bytes.length, data: bytes }]), satoshis };
}

/** Signs a version-1 (or `version`) tx spending P2PKH coins; `signWith` overrides the key per input. */
export async function spend(
  coins: Coin[],
  payments: Payment[],
  options: { version?: number; signWith?: PrivateKey[] } = {},
): Promise<Transaction> {
  const tx = new Transaction(options.version ?? 1);
  coins.forEach((coin, i) => {
    const signer = options.signWith?.[i] ?? coin.key;
    const lockingScript = new P2PKH().lock(coin.key.toPublicKey().toHash());
    tx.addInput({
      sourceTXID: coin.txid,
      sourceOutputIndex: coin.vout,
      unlockingScriptTemplate: new P2PKH().unlock(signer, 'all', false, coin.satoshis, lockingScript),
    });
  });
  for (const payment of payments) tx.addOutput(payment);
  await tx.sign();
  return tx;
}

/** The same inputs and signatures with different outputs: what tampering with a signed tx looks like. */
export function withOutputs(tx: Transaction, payments: Payment[]): Transaction {
  return new Transaction(tx.version, copyInputs(tx), payments, tx.lockTime);
}

/** Replaces input `index`'s signature s by n − s: still a valid ECDSA signature, but high-S. */
export function withHighS(tx: Transaction, index = 0): Transaction {
  const inputs = copyInputs(tx);
  const chunks = inputs[index]!.unlockingScript.chunks;
  const signature = TransactionSignature.fromChecksigFormat(chunks[0]!.data!);
  const highS = new TransactionSignature(signature.r, new Curve().n.sub(signature.s), signature.scope).toChecksigFormat();
  inputs[index]!.unlockingScript = new UnlockingScript([{ op: highS.length, data: highS }, chunks[1]!]);
  return new Transaction(tx.version, inputs, tx.outputs, tx.lockTime);
}

function copyInputs(tx: Transaction) {
  return tx.inputs.map((input) => ({
    sourceTXID: input.sourceTXID!,
    sourceOutputIndex: input.sourceOutputIndex,
    sequence: input.sequence ?? 0xffffffff,
    unlockingScript: UnlockingScript.fromHex(input.unlockingScript!.toHex()),
  }));
}

export function outputsOf(tx: Transaction): Payment[] {
  return tx.outputs.map((o) => ({ lockingScript: o.lockingScript, satoshis: o.satoshis ?? 0 }));
}

import { P2PKH, Transaction, UnlockingScript } from '@bsv/sdk';
import { p2pkhCheckContext, verifiesAsPlainP2pkh } from '../../../ops/stand-ins/chain-simulator/p2pkhFastPath';
import { NODE_REASONS } from '../../../ops/stand-ins/chain-simulator/nodeReasons';
import { ChainState } from '../../../ops/stand-ins/chain-simulator/state';
import { DEFAULT_POLICY, validateTransaction, type ValidationPolicy } from '../../../ops/stand-ins/chain-simulator/validation';
import { type Coin, dataOutput, newKey, outputsOf, payTo, spend, withHighS, withOutputs } from '../../support/chainTransactions';

const SIG_NULLFAIL = '16: mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)';
const SIG_EQUALVERIFY = '16: mandatory-script-verify-flag-failed (Script failed an OP_EQUALVERIFY operation)';
const SIG_HIGH_S = '64: non-mandatory-script-verify-flag (Non-canonical signature: S value is unnecessarily high)';

function setup(policy: Partial<ValidationPolicy> = {}) {
  let clock = 1_800_000_000_000;
  const chain = new ChainState('test', () => clock);
  const fullPolicy = { ...DEFAULT_POLICY, ...policy };
  const fund = (satoshis: number, confirmed = true): Coin => {
    const key = newKey();
    const record = chain.fund(new P2PKH().lock(key.toPublicKey().toHash()), satoshis, confirmed);
    return { txid: record.txid, vout: 0, satoshis, key };
  };
  const validate = (tx: Transaction | string) =>
    validateTransaction(typeof tx === 'string' ? tx : tx.toHex(), chain.validationView(), fullPolicy);
  /** Validates and, when valid, accepts, as the broadcast route does. */
  const broadcast = (tx: Transaction) => {
    const result = validate(tx);
    if (result.ok) chain.acceptToMempool(result.tx, result.fee);
    return result;
  };
  const reasonOf = (tx: Transaction | string) => {
    const result = validate(tx);
    return result.ok ? 'accepted' : result.reason;
  };
  return { chain, fund, validate, broadcast, reasonOf, advance: (ms: number) => (clock += ms) };
}

describe('broadcast validation (node order, WOC texts)', () => {
  it('accepts a signed P2PKH spend of a funded output and reports its fee and size', async () => {
    const { fund, validate } = setup();
    const coin = fund(100_000);
    const tx = await spend([coin], [payTo(newKey(), 60_000), payTo(coin.key, 39_000)]);
    const result = validate(tx);
    expect(result).toMatchObject({ ok: true, txid: tx.id('hex'), fee: 1_000, size: tx.toBinary().length });
  });

  it('lets a child spend its parent while both are unconfirmed', async () => {
    const { fund, broadcast } = setup();
    const coin = fund(100_000);
    const next = newKey();
    const parent = await spend([coin], [payTo(next, 99_000)]);
    expect(broadcast(parent).ok).toBe(true);
    const child = await spend([{ txid: parent.id('hex'), vout: 0, satoshis: 99_000, key: next }], [payTo(newKey(), 98_000)]);
    expect(broadcast(child)).toMatchObject({ ok: true, mempoolParents: [parent.id('hex')] });
  });

  it('answers a rebroadcast with "already in the mempool", then "txn-already-known" once mined', async () => {
    const { chain, fund, broadcast, reasonOf } = setup();
    const coin = fund(100_000);
    const tx = await spend([coin], [payTo(newKey(), 99_000)]);
    expect(broadcast(tx).ok).toBe(true);
    expect(reasonOf(tx)).toBe(NODE_REASONS.alreadyInMempool);
    chain.mine(1);
    expect(reasonOf(tx)).toBe(NODE_REASONS.alreadyKnown);
  });

  it('answers "Missing inputs" for a mined tx whose outputs are all spent and mined, as the node no longer has its coins', async () => {
    const { chain, fund, broadcast, reasonOf } = setup();
    const coin = fund(100_000);
    const next = newKey();
    const tx = await spend([coin], [payTo(next, 99_000)]);
    broadcast(tx);
    broadcast(await spend([{ txid: tx.id('hex'), vout: 0, satoshis: 99_000, key: next }], [payTo(newKey(), 98_000)]));
    chain.mine(1);
    expect(reasonOf(tx)).toBe(NODE_REASONS.missingInputs);
  });

  it('rejects a tx whose output amount was changed after signing: the signature no longer verifies', async () => {
    const { fund, reasonOf } = setup();
    const coin = fund(100_000);
    const receiver = newKey();
    const signed = await spend([coin], [payTo(receiver, 90_000)]);
    expect(reasonOf(withOutputs(signed, [payTo(receiver, 80_000)]))).toBe(SIG_NULLFAIL);
    expect(reasonOf(signed)).toBe('accepted');
  });

  it('rejects a spend signed with another key: its public key does not hash to the locked address', async () => {
    const { fund, reasonOf } = setup();
    const coin = fund(100_000);
    const tx = await spend([coin], [payTo(newKey(), 99_000)], { signWith: [newKey()] });
    expect(reasonOf(tx)).toBe(SIG_EQUALVERIFY);
  });

  it('rejects a high-S signature in a version-1 tx as non-mandatory, and accepts it in version 2 (Chronicle)', async () => {
    const { fund, reasonOf } = setup();
    const coin = fund(100_000);
    const v1 = await spend([coin], [payTo(newKey(), 99_000)]);
    expect(reasonOf(withHighS(v1))).toBe(SIG_HIGH_S);
    const v2 = await spend([coin], [payTo(newKey(), 99_000)], { version: 2 });
    expect(reasonOf(withHighS(v2))).toBe('accepted');
  });

  it('checks every input: a valid first input does not excuse a bad second one', async () => {
    const { fund, reasonOf } = setup();
    const [a, b] = [fund(50_000), fund(50_000)];
    const tx = await spend([a, b], [payTo(newKey(), 99_000)], { signWith: [a.key, newKey()] });
    expect(reasonOf(tx)).toBe(SIG_EQUALVERIFY);
  });

  it('rejects a second spend of an output a mempool tx already spends with txn-mempool-conflict', async () => {
    const { fund, broadcast, reasonOf } = setup();
    const coin = fund(100_000);
    expect(broadcast(await spend([coin], [payTo(newKey(), 99_000)])).ok).toBe(true);
    expect(reasonOf(await spend([coin], [payTo(newKey(), 98_000)]))).toBe(NODE_REASONS.mempoolConflict);
  });

  it('rejects a spend of an output spent in a block with Missing inputs', async () => {
    const { chain, fund, broadcast, reasonOf } = setup();
    const coin = fund(100_000);
    broadcast(await spend([coin], [payTo(newKey(), 99_000)]));
    chain.mine(1);
    expect(reasonOf(await spend([coin], [payTo(newKey(), 98_000)]))).toBe(NODE_REASONS.missingInputs);
  });

  it('rejects spends of outputs that never existed with Missing inputs', async () => {
    const { fund, reasonOf } = setup();
    const coin = fund(100_000);
    expect(reasonOf(await spend([{ ...coin, txid: 'ab'.repeat(32) }], [payTo(newKey(), 99_000)]))).toBe(NODE_REASONS.missingInputs);
    expect(reasonOf(await spend([{ ...coin, vout: 1 }], [payTo(newKey(), 99_000)]))).toBe(NODE_REASONS.missingInputs);
  });

  it('rejects a zero-value spendable output as dust, and accepts a zero-value OP_FALSE OP_RETURN and a 1-sat output', async () => {
    const { fund, reasonOf } = setup();
    const coin = fund(100_000);
    expect(reasonOf(await spend([coin], [payTo(newKey(), 99_000), payTo(newKey(), 0)]))).toBe(NODE_REASONS.dust);
    expect(reasonOf(await spend([coin], [payTo(newKey(), 99_000), dataOutput([1, 2, 3]), payTo(newKey(), 1)]))).toBe('accepted');
  });

  it('rejects a fee below the policy rate with the node min-fee text, and accepts exactly the minimum', async () => {
    const rate = 500;
    const { fund, reasonOf } = setup({ feeRateSatPerKb: rate });
    const coin = fund(100_000);
    const receiver = newKey();
    // The DER signature length varies by a byte, so sign until the size is the one the fee was computed for.
    const txPayingFee = async (fee: (size: number) => number) => {
      let size = 191;
      for (;;) {
        const tx = await spend([coin], [payTo(receiver, coin.satoshis - fee(size))]);
        if (tx.toBinary().length === size) return tx;
        size = tx.toBinary().length;
      }
    };
    const minimum = (size: number) => Math.ceil((size * rate) / 1000);
    expect(reasonOf(await txPayingFee((size) => minimum(size) - 1))).toBe(NODE_REASONS.minFeeNotMet);
    expect(reasonOf(await txPayingFee(minimum))).toBe('accepted');
  });

  it('rejects outputs worth more than the inputs', async () => {
    const { fund, reasonOf } = setup();
    const coin = fund(100_000);
    expect(reasonOf(await spend([coin], [payTo(newKey(), 100_001)]))).toBe(NODE_REASONS.inBelowOut);
  });

  it('rejects malformed structures with the node texts', async () => {
    const { fund, reasonOf } = setup();
    const coin = fund(100_000);
    const tx = await spend([coin], [payTo(newKey(), 99_000)]);
    const input = { sourceTXID: coin.txid, sourceOutputIndex: 0, unlockingScript: tx.inputs[0]!.unlockingScript!, sequence: 0xffffffff };
    expect(reasonOf(new Transaction(1, [], outputsOf(tx)).toHex())).toBe(NODE_REASONS.vinEmpty);
    expect(reasonOf(new Transaction(1, [input], []).toHex())).toBe(NODE_REASONS.voutEmpty);
    expect(reasonOf(new Transaction(1, [input, input], outputsOf(tx)).toHex())).toBe(NODE_REASONS.inputsDuplicate);
    const coinbaseLike = {
      sourceTXID: '0'.repeat(64),
      sourceOutputIndex: 0xffffffff,
      unlockingScript: new UnlockingScript([]),
      sequence: 0,
    };
    expect(reasonOf(new Transaction(1, [coinbaseLike], outputsOf(tx)).toHex())).toBe(NODE_REASONS.coinbase);
    expect(reasonOf(new Transaction(1, [input, coinbaseLike], outputsOf(tx)).toHex())).toBe(NODE_REASONS.prevoutNull);
  });

  it('answers TX decode failed for anything that is not exactly one serialised tx', async () => {
    const { fund, reasonOf } = setup();
    const hex = (await spend([fund(100_000)], [payTo(newKey(), 99_000)])).toHex();
    for (const bad of ['', 'zz', '00', hex.slice(0, -2), `${hex}00`, `${hex}0`]) expect(reasonOf(bad)).toBe(NODE_REASONS.decodeFailed);
    expect(validateTransaction(undefined, setup().chain.validationView(), DEFAULT_POLICY)).toMatchObject({ ok: false, stage: 'decode' });
  });

  it('rejects a tx with as many unconfirmed ancestors as the limit, and accepts it once they are mined', async () => {
    const { chain, fund, broadcast, reasonOf } = setup({ ancestorLimit: 3 });
    let coin = fund(100_000);
    for (let depth = 0; depth < 3; depth++) {
      const next = newKey();
      const tx = await spend([coin], [payTo(next, coin.satoshis - 1_000)]);
      expect(broadcast(tx).ok).toBe(true);
      coin = { txid: tx.id('hex'), vout: 0, satoshis: coin.satoshis - 1_000, key: next };
    }
    const fourth = await spend([coin], [payTo(newKey(), coin.satoshis - 1_000)]);
    expect(reasonOf(fourth)).toBe(NODE_REASONS.tooLongMempoolChain);
    chain.mine(1);
    expect(reasonOf(fourth)).toBe('accepted');
  });

  it('checks the fee before the scripts, as the node does, so a cheap rejection wins over a bad signature', async () => {
    const { fund, validate } = setup({ feeRateSatPerKb: 1_000 });
    const coin = fund(100_000);
    const tx = await spend([coin], [payTo(newKey(), 99_999)], { signWith: [newKey()] });
    expect(validate(tx)).toMatchObject({ ok: false, stage: 'fee', reason: NODE_REASONS.minFeeNotMet });
  });

  it('does not let a spender see an output before its tx has propagated', async () => {
    const { chain, fund, advance, reasonOf } = setup();
    const coin = fund(100_000);
    const next = newKey();
    const parent = await spend([coin], [payTo(next, 99_000)]);
    const accepted = validateTransaction(parent.toHex(), chain.validationView(), DEFAULT_POLICY);
    if (!accepted.ok) throw new Error(accepted.reason);
    chain.acceptToMempool(accepted.tx, accepted.fee, 1_000);
    const child = await spend([{ txid: parent.id('hex'), vout: 0, satoshis: 99_000, key: next }], [payTo(newKey(), 98_000)]);
    expect(reasonOf(child)).toBe(NODE_REASONS.missingInputs);
    expect(chain.visibleTx(parent.id('hex'))).toBeUndefined();
    advance(1_000);
    expect(reasonOf(child)).toBe('accepted');
    expect(chain.visibleTx(parent.id('hex'))?.txid).toBe(parent.id('hex'));
  });
});

describe('native P2PKH path (only a pass is an answer; everything else goes to the interpreter)', () => {
  /** Per input: whether the native path alone accepts it. */
  function nativeVerdicts(chain: ChainState, tx: Transaction): boolean[] {
    const view = chain.validationView();
    const context = p2pkhCheckContext();
    return tx.inputs.map((input, i) =>
      verifiesAsPlainP2pkh(tx, i, view.spendableOutput(input.sourceTXID!, input.sourceOutputIndex)!, context),
    );
  }

  /** The same tx with input `to` carrying input `from`'s unlocking script: right key, valid DER, wrong digest. */
  function withSignatureMoved(tx: Transaction, from: number, to: number): Transaction {
    const inputs = tx.inputs.map((input, i) => ({
      sourceTXID: input.sourceTXID!,
      sourceOutputIndex: input.sourceOutputIndex,
      sequence: input.sequence ?? 0xffffffff,
      unlockingScript: UnlockingScript.fromHex(tx.inputs[i === to ? from : i]!.unlockingScript!.toHex()),
    }));
    return new Transaction(tx.version, inputs, tx.outputs, tx.lockTime);
  }

  it('accepts every input of a 40-input sweep natively, and rejects the sweep when one late input carries another input signature', async () => {
    const { chain, reasonOf } = setup();
    const key = newKey();
    const owned = Array.from({ length: 40 }, () => ({
      txid: chain.fund(payTo(key, 1_000).lockingScript, 1_000, true).txid,
      vout: 0,
      satoshis: 1_000,
      key,
    }));
    const tx = await spend(owned, [payTo(newKey(), 35_000)]);
    expect(nativeVerdicts(chain, tx).every(Boolean)).toBe(true);
    expect(reasonOf(tx)).toBe('accepted');

    const tampered = withSignatureMoved(tx, 3, 37);
    const verdicts = nativeVerdicts(chain, tampered);
    expect(verdicts[37]).toBe(false);
    expect(verdicts.filter((ok) => !ok)).toHaveLength(1);
    expect(reasonOf(tampered)).toBe(SIG_NULLFAIL);
  });

  it('does not pass a tampered output, a foreign key or a high S natively; the interpreter gives their reasons', async () => {
    const { chain, fund, reasonOf } = setup();
    const coin = fund(100_000);
    const signed = await spend([coin], [payTo(newKey(), 90_000)]);
    const tampered = withOutputs(signed, [payTo(newKey(), 90_000)]);
    const foreign = await spend([coin], [payTo(newKey(), 99_000)], { signWith: [newKey()] });
    const highS = withHighS(signed);
    expect([tampered, foreign, highS].map((tx) => nativeVerdicts(chain, tx)[0])).toEqual([false, false, false]);
    expect([tampered, foreign, highS].map(reasonOf)).toEqual([SIG_NULLFAIL, SIG_EQUALVERIFY, SIG_HIGH_S]);
  });

  it('leaves a SIGHASH_ALL|ANYONECANPAY|FORKID signature to the interpreter, which accepts it', async () => {
    const { chain, fund, reasonOf } = setup();
    const coin = fund(100_000);
    const lockingScript = payTo(coin.key, coin.satoshis).lockingScript;
    const tx = new Transaction(1);
    tx.addInput({
      sourceTXID: coin.txid,
      sourceOutputIndex: 0,
      unlockingScriptTemplate: new P2PKH().unlock(coin.key, 'all', true, coin.satoshis, lockingScript),
    });
    tx.addOutput(payTo(newKey(), 99_000));
    await tx.sign();
    expect(nativeVerdicts(chain, tx)).toEqual([false]);
    expect(reasonOf(tx)).toBe('accepted');
  });
});

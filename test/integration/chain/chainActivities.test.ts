import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { P2PKH, PrivateKey, PublicKey, Signature, Transaction, TransactionSignature, UnlockingScript } from '@bsv/sdk';
import { CHAIN_FAILURES, createChainActivities, type ChainActivities } from '../../../activities/chain/chainActivities';
import { freePort } from '../../../ops/dev-stack/services';
import { toHighS } from '../../../src/chain/ecdsa';
import type { SpendableOutput } from '../../../src/chain/transactions';
import { createKmsClient, type KmsClient } from '../../../src/kms/client';
import { createLogger } from '../../../src/logging/logger';
import { createWocClient } from '../../../src/woc/client';
import { spawnSimulator, type SimulatorClient } from '../../support/chainSimulator';
import { spawnService, type SpawnedService } from '../../support/processes';

/** A parsed transaction keeps its original bytes cached; rebuild it so edits reach the serialisation. */
function reserialised(tx: Transaction): { txid: string; hex: string } {
  const rebuilt = new Transaction(tx.version, tx.inputs, tx.outputs, tx.lockTime);
  return { txid: rebuilt.id('hex'), hex: rebuilt.toHex() };
}

const PLAN_FEE_RATE = 100;

const logger = createLogger({ service: 'test', deploySha: 'test', level: 'error', format: 'json' });
logger.transports[0]!.silent = true;

/**
 * A transaction built by our code, signed through the dev KMS over HTTP, judged by the chain simulator over HTTP.
 * Both stand-ins run from their own entry points as separate processes, with the flags a developer would pass: the
 * KMS answers every signature high-S, and the node's fee policy is the 100 sat/kB the plans pay, so a transaction
 * that underpays is refused.
 */
describe('chain activities against the dev KMS and the chain simulator', () => {
  let kmsService: SpawnedService;
  let kms: KmsClient;
  let simulator: SimulatorClient;
  let activities: ChainActivities;
  let fundingAddress: string;
  let fundingScriptHex: string;
  const env = new MockActivityEnvironment();
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (details: unknown) => heartbeats.push(details));
  // MockActivityEnvironment.run is typed loosely; this keeps each call's argument and result types.
  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
    env.run<A, R, (...args: A) => Promise<R>>(fn, ...args);
  const destination = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');

  beforeAll(async () => {
    const keysDir = mkdtempSync(path.join(tmpdir(), 'chain-kms-'));
    [kmsService, simulator] = await Promise.all([
      spawnService(
        'ops/stand-ins/dev-kms/main.ts',
        ['--data-dir', keysDir, '--api-key', 'chain-test-key-0123456789abcdef', '--high-s-rate', '1', '--create-key', 'funding'],
        '/health',
      ),
      spawnSimulator(['--fee-rate', String(PLAN_FEE_RATE)]),
    ]);
    kms = createKmsClient({
      baseUrl: kmsService.baseUrl,
      apiKey: 'chain-test-key-0123456789abcdef',
      timeoutMs: 5_000,
      retryAttempts: 2,
    });
    const woc = createWocClient({
      network: 'test',
      baseUrl: simulator.baseUrl,
      timeoutMs: 5_000,
      retries: 2,
      requestsPerSecond: 1_000,
      sleep: () => Promise.resolve(),
    });
    activities = createChainActivities({ kms, woc, logger, network: 'test' });
    const funding = PublicKey.fromString((await kms.publicKey('funding')).pubKeyHex);
    fundingAddress = funding.toAddress('testnet');
    fundingScriptHex = new P2PKH().lock(funding.toHash()).toHex();
  }, 60_000);

  afterAll(async () => {
    await simulator?.stop();
    await kmsService?.stop();
  });

  async function fundedInput(satoshis: number): Promise<SpendableOutput> {
    const res = await simulator.admin('POST', '/faucet', { address: fundingAddress, satoshis, confirmed: true });
    const coin = res.body as { txid: string; vout: number };
    return { txid: coin.txid, vout: coin.vout, satoshis, lockingScriptHex: fundingScriptHex, keyIdentifier: 'funding' };
  }

  const anchorPlan = (input: SpendableOutput) => ({
    inputs: [input],
    outputs: [{ kind: 'data' as const, pushes: [[0x70, 0x70], new Array<number>(32).fill(3)] }],
    changeAddress: fundingAddress,
    minChangeSats: 100,
    feeRateSatPerKb: PLAN_FEE_RATE,
  });

  async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }

  it('is accepted, counts a rebroadcast as already known, and confirms when mined', async () => {
    const signed = await run(activities.signTransaction, anchorPlan(await fundedInput(20_000)));
    expect(await run(activities.broadcastTransaction, signed)).toEqual({ txid: signed.txid, alreadyKnown: false });
    expect(await run(activities.broadcastTransaction, signed)).toEqual({ txid: signed.txid, alreadyKnown: true });
    expect(await run(activities.transactionConfirmations, signed.txid)).toBe(0);
    await simulator.mine(1);
    expect(await run(activities.transactionConfirmations, signed.txid)).toBe(1);
  });

  it('rejects a tampered amount with the node reason, as a non-retryable BroadcastRejected', async () => {
    const signed = await run(activities.signTransaction, anchorPlan(await fundedInput(20_000)));
    const tx = Transaction.fromHex(signed.hex);
    tx.outputs[1]!.satoshis = tx.outputs[1]!.satoshis! - 1;
    const failure = await failureOf(run(activities.broadcastTransaction, reserialised(tx)));
    expect(failure.type).toBe(CHAIN_FAILURES.broadcastRejected);
    expect(failure.details?.[0]).toMatchObject({ outcome: 'script_verify_failed' });
    expect(failure.nonRetryable).toBe(true);
  });

  it('rejects a high-S signature, which our signing never lets through', async () => {
    const signed = await run(activities.signTransaction, anchorPlan(await fundedInput(20_000)));
    const tx = Transaction.fromHex(signed.hex);
    const [sigChunk, keyChunk] = tx.inputs[0]!.unlockingScript!.chunks;
    const checksig = TransactionSignature.fromChecksigFormat(sigChunk!.data!);
    const highS = toHighS(new Signature(checksig.r, checksig.s));
    const highSChecksig = new TransactionSignature(highS.r, highS.s, checksig.scope).toChecksigFormat();
    tx.inputs[0]!.unlockingScript = new UnlockingScript([{ op: highSChecksig.length, data: highSChecksig }, keyChunk!]);
    const failure = await failureOf(run(activities.broadcastTransaction, reserialised(tx)));
    expect(failure.type).toBe(CHAIN_FAILURES.broadcastRejected);
    expect(failure.details?.[0]).toMatchObject({ outcome: 'script_verify_failed' });
    expect(failure.message).toContain('non-mandatory-script-verify-flag (Non-canonical signature: S value is unnecessarily high)');
  });

  it('is refused by the node when it pays less than the policy fee rate', async () => {
    const signed = await run(activities.signTransaction, { ...anchorPlan(await fundedInput(20_000)), feeRateSatPerKb: PLAN_FEE_RATE / 2 });
    const failure = await failureOf(run(activities.broadcastTransaction, signed));
    expect(failure.type).toBe(CHAIN_FAILURES.broadcastRejected);
    expect(failure.details?.[0]).toMatchObject({ outcome: 'insufficient_fee' });
    expect(failure.nonRetryable).toBe(true);
  });

  it('refuses a change address of the other network as an invalid plan, without retry', async () => {
    const mainnetChange = PrivateKey.fromRandom().toPublicKey().toAddress('mainnet');
    const failure = await failureOf(
      run(activities.signTransaction, { ...anchorPlan(await fundedInput(20_000)), changeAddress: mainnetChange }),
    );
    expect(failure.type).toBe(CHAIN_FAILURES.invalidPlan);
    expect(failure.message).toContain('change address');
    expect(failure.nonRetryable).toBe(true);
  });

  it('heartbeats while the KMS signs', async () => {
    heartbeats.length = 0;
    await run(activities.signTransaction, anchorPlan(await fundedInput(20_000)));
    expect(heartbeats).toContainEqual({ step: 'signing', inputs: 1 });
  });

  it('reports a read the service refuses as ChainReadRejected, not as a broadcast rejection', async () => {
    const failure = await failureOf(run(activities.transactionConfirmations, 'not-a-txid'));
    expect(failure.type).toBe(CHAIN_FAILURES.chainReadRejected);
    expect(failure.nonRetryable).toBe(true);
  });

  it.each([
    [
      'a signature byte',
      (chunks: { op: number; data?: number[] }[]) => [
        { ...chunks[0]!, data: chunks[0]!.data!.map((b, i) => (i === 10 ? b ^ 0x01 : b)) },
        chunks[1]!,
      ],
    ],
    [
      'the public key',
      (chunks: { op: number; data?: number[] }[]) => [
        chunks[0]!,
        { op: 33, data: PrivateKey.fromRandom().toPublicKey().encode(true) as number[] },
      ],
    ],
  ])('rejects a transaction whose unlocking script has %s changed', async (_what, tamper) => {
    const signed = await run(activities.signTransaction, anchorPlan(await fundedInput(20_000)));
    const tx = Transaction.fromHex(signed.hex);
    tx.inputs[0]!.unlockingScript = new UnlockingScript(tamper(tx.inputs[0]!.unlockingScript!.chunks));
    const failure = await failureOf(run(activities.broadcastTransaction, reserialised(tx)));
    expect(failure.type).toBe(CHAIN_FAILURES.broadcastRejected);
    expect(failure.details?.[0]).toMatchObject({ outcome: 'script_verify_failed' });
  });

  it('reports Missing inputs for an output the chain does not have', async () => {
    const unknown: SpendableOutput = {
      txid: 'cd'.repeat(32),
      vout: 0,
      satoshis: 20_000,
      lockingScriptHex: fundingScriptHex,
      keyIdentifier: 'funding',
    };
    const signed = await run(activities.signTransaction, anchorPlan(unknown));
    const failure = await failureOf(run(activities.broadcastTransaction, signed));
    expect(failure.type).toBe(CHAIN_FAILURES.missingInputs);
    expect(failure.nonRetryable).toBe(true);
  });

  it('reports a mempool conflict for a second transaction spending the same output', async () => {
    const input = await fundedInput(20_000);
    const first = await run(activities.signTransaction, anchorPlan(input));
    const second = await run(activities.signTransaction, {
      ...anchorPlan(input),
      outputs: [{ kind: 'p2pkh' as const, address: destination, satoshis: 5_000 }],
    });
    await run(activities.broadcastTransaction, first);
    const failure = await failureOf(run(activities.broadcastTransaction, second));
    expect(failure.type).toBe(CHAIN_FAILURES.mempoolConflict);
  });

  it('fails clearly and without retry when funds are insufficient', async () => {
    const failure = await failureOf(
      run(activities.signTransaction, {
        ...anchorPlan(await fundedInput(50)),
        outputs: [{ kind: 'p2pkh' as const, address: destination, satoshis: 49 }],
      }),
    );
    expect(failure.type).toBe(CHAIN_FAILURES.insufficientFunds);
    expect(failure.nonRetryable).toBe(true);
  });

  it('reports an unreachable KMS as retryable KmsUnavailable', async () => {
    const deadKms = createKmsClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, apiKey: 'x', timeoutMs: 1_000, retryAttempts: 1 });
    const woc = createWocClient({ network: 'test', baseUrl: simulator.baseUrl, timeoutMs: 5_000, retries: 0, requestsPerSecond: 1_000 });
    const offline = createChainActivities({ kms: deadKms, woc, logger, network: 'test' });
    const failure = await failureOf(run(offline.signTransaction, anchorPlan(await fundedInput(20_000))));
    expect(failure.type).toBe(CHAIN_FAILURES.kmsUnavailable);
    expect(failure.nonRetryable).toBe(false);
  });
});

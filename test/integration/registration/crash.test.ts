import type { ChildProcess } from 'node:child_process';
import { PrivateKey } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { utxoModel } from '../../../src/pool/models';
import { patchModel } from '../../../src/registration/models';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { holdSign, startMainWorkerProcess, startPoolStack, type PoolStack } from '../../support/poolStack';

/**
 * The production worker (workers/main.ts) in its own process, SIGKILLed while a registration waits on the KMS: first
 * while the issuer signs the record, then while the anchor transaction is being signed. A new worker finishes each
 * registration: one run, one anchor, every pool output spent once, no reservation left.
 */
describe('registration with the worker killed mid-flight', () => {
  let stack: PoolStack;
  let server: Listening;
  let api: ReturnType<typeof apiClient>;
  const workers: ChildProcess[] = [];
  const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');

  beforeAll(async () => {
    stack = await startPoolStack(
      { FEE_PER_KB: '100', ANCHOR_CONFIRMATIONS: '1', ANCHOR_BATCH_MAX_WAIT_SECONDS: '1' },
      { blockIntervalMs: 300, inProcessWorker: false },
    );
    server = await listen(createApp(stack.deps));
    api = apiClient(server.baseUrl, stack.deps.config.auth.apiKey);
    await startWorker();
    await fundAndSyncPool(stack, 4);
  }, 120_000);
  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await server?.close();
    await stack?.close();
  });

  async function startWorker(): Promise<ChildProcess> {
    const worker = await startMainWorkerProcess(stack);
    workers.push(worker);
    return worker;
  }

  async function crashDuring(uid: string, skipSigns: number): Promise<void> {
    const victim = workers[workers.length - 1]!;
    const hold = holdSign(stack, skipSigns);
    const accepted = await api.adminPost('/v1/patches', registrationBody(uid, owner));
    expect(accepted.status).toBe(202);
    await hold.held;
    victim.kill('SIGKILL');
    await new Promise((resolve) => victim.once('exit', resolve));
    hold.release();
    await startWorker();

    // The killed attempt is retried once its 30 s heartbeat timeout passes (signing heartbeats while the KMS works).
    const done = await api.waitDone(accepted.body.statusUrl as string, 300_000);
    expect(done).toMatchObject({ state: 'completed', status: 'anchored' });
    const runs: string[] = [];
    for await (const execution of stack.deps.temporal.workflow.list({ query: `WorkflowId = 'registration-${uid}'` }))
      runs.push(execution.runId);
    expect(runs).toHaveLength(1);
    const patch = (await patchModel(stack.deps.mongo).findById(uid).lean())!;
    // Exactly one anchor transaction spent exactly one pool output; the simulator holds it, and nothing stays reserved.
    expect(await utxoModel(stack.deps.mongo).countDocuments({ spentBy: patch.anchor!.txid })).toBe(1);
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
    expect((await fetch(`${stack.simulator.baseUrl}/v1/bsv/test/tx/${patch.anchor!.txid}/hex`)).status).toBe(200);
    expect(((await api.get(`/v1/patches/${uid}/verify`)).body as { status: string }).status).toBe('authentic');
  }

  it('finishes once when the worker dies while the issuer signs the record', async () => {
    await crashDuring('PP-CRASH-1', 0);
  }, 360_000);

  it('finishes once when the worker dies while the anchor transaction is signed', async () => {
    await crashDuring('PP-CRASH-2', 1);
  }, 360_000);
});

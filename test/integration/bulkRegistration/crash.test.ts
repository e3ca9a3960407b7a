import type { ChildProcess } from 'node:child_process';
import { PrivateKey } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { bulkRegistrationWorkflowId } from '../../../src/bulkRegistration/ids';
import { patchBatchChunkModel } from '../../../src/bulkRegistration/models';
import { reservationModel, utxoModel } from '../../../src/pool/models';
import { patchModel } from '../../../src/registration/models';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { holdSign, startMainWorkerProcess, startPoolStack, type PoolStack } from '../../support/poolStack';
import { waitFor } from '../../support/workerProcesses';

/**
 * The production worker (workers/main.ts) SIGKILLed three times during one batch of 3,500 patches: while chunks are
 * being sealed, while the tree heads are signed, and while the anchor transaction is signed. Each time a new worker
 * takes over. The batch still ends with every record once, one anchor transaction, no output reserved.
 */
describe('bulk registration with the worker killed at each step', () => {
  let stack: PoolStack;
  let server: Listening;
  let api: ReturnType<typeof apiClient>;
  const workers: ChildProcess[] = [];
  const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');

  beforeAll(async () => {
    stack = await startPoolStack({ FEE_PER_KB: '100', ANCHOR_CONFIRMATIONS: '1' }, { blockIntervalMs: 300, inProcessWorker: false });
    server = await listen(createApp(stack.deps));
    api = apiClient(server.baseUrl, stack.deps.config.auth.apiKey);
    workers.push(await startMainWorkerProcess(stack));
    await fundAndSyncPool(stack, 3);
  }, 120_000);
  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await server?.close();
    await stack?.close();
  });

  async function replaceWorker(): Promise<void> {
    const victim = workers[workers.length - 1]!;
    victim.kill('SIGKILL');
    await new Promise((resolve) => victim.once('exit', resolve));
    workers.push(await startMainWorkerProcess(stack));
  }

  it('anchors every record once, in one transaction, whatever step the worker dies in', async () => {
    const size = 3500;
    const items = Array.from({ length: size }, (_, i) => registrationBody(`CRASH-${String(i).padStart(5, '0')}`, owner));
    const signsBefore = stack.signRequests();
    const treeHeads = holdSign(stack, 0);
    const posted = await api.call('POST', '/v1/patch-batches', JSON.stringify(items), {
      'content-type': 'application/json',
      'x-api-key': stack.deps.config.auth.apiKey,
      'idempotency-key': 'crash-batch',
    });
    expect(posted.status).toBe(202);
    const batchId = String(posted.body.batchId);
    const chunks = patchBatchChunkModel(stack.deps.mongo);

    // 1. Killed while sealing: the first of four chunks is sealed, others are in flight.
    await waitFor('a sealed chunk', async () => ((await chunks.countDocuments({ batchId })) > 0 ? true : undefined), 60_000);
    await replaceWorker();
    // 2. Killed while the KMS signs the tree heads.
    await treeHeads.held;
    await replaceWorker();
    // 3. Killed while the KMS signs the anchor transaction: the retried tree-head request passes, the next is held.
    const anchorSign = holdSign(stack, 1);
    treeHeads.release();
    await anchorSign.held;
    await replaceWorker();
    anchorSign.release();

    const deadline = Date.now() + 300_000;
    let view: { state: string; counts: Record<string, number>; txids: string[] };
    do {
      await new Promise((r) => setTimeout(r, 500));
      view = (await api.adminGet(`/v1/patch-batches/${batchId}`)).body as typeof view;
    } while (view.state !== 'completed' && view.state !== 'failed' && Date.now() < deadline);

    expect(view).toMatchObject({ state: 'completed', counts: { anchored: size, duplicate: 0, failed: 0 } });
    expect(view.txids).toHaveLength(1);
    // The KMS signed once per step: the held requests died with their workers, and nothing signed was signed again.
    expect(stack.signRequests() - signsBefore).toBe(2);
    const runs: string[] = [];
    for await (const execution of stack.deps.temporal.workflow.list({ query: `WorkflowId = '${bulkRegistrationWorkflowId(batchId)}'` }))
      runs.push(execution.runId);
    expect(runs).toHaveLength(1);
    expect(await patchModel(stack.deps.mongo).countDocuments({ batchId, status: 'anchored' })).toBe(size);
    const sealed = await chunks.find({ batchId }).lean();
    expect(sealed.map((c) => c.size).reduce((a, b) => a + b, 0)).toBe(size);
    expect(sealed.every((c) => c.issuerSignature !== null && c.anchor?.txid === view.txids[0])).toBe(true);
    // One pool output spent, by that transaction; nothing stays reserved.
    expect(await utxoModel(stack.deps.mongo).countDocuments({ spentBy: view.txids[0] })).toBe(1);
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
    expect(await reservationModel(stack.deps.mongo).countDocuments({})).toBe(0);
    for (const uid of ['CRASH-00000', 'CRASH-01999', 'CRASH-03499']) {
      expect(((await api.get(`/v1/patches/${uid}/verify`)).body as { status: string }).status).toBe('authentic');
    }
  }, 480_000);
});

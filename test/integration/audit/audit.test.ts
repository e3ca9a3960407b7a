import { createApp } from '../../../api/app';
import { waitFor } from '../../support/workerProcesses';
import type { AuditReport } from '../../../src/audit/audit';
import { chainFollowerWorkflowId } from '../../../src/chainFollower/ids';
import { startChainFollower } from '../../../src/chainFollower/launch';
import { anchorTxModel, blockHeaderModel, headerId } from '../../../src/chainFollower/models';
import { patchModel } from '../../../src/registration/models';
import { signOwnerMessage } from '../../../src/sdk/ownerSigning';
import { transferModel } from '../../../src/transfer/models';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, loggedInOwner, newNonce, registrationBody, type TestOwner } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { runPatchproof } from '../../support/processes';
import { testEnvironment } from '../../support/stack';

type Finding = AuditReport['findings'][number];

describe('patchproof audit: MongoDB, Temporal and the local chain reconciled', () => {
  let stack: PoolStack;
  let server: Listening;
  let api: ReturnType<typeof apiClient>;
  let env: Record<string, string>;
  let alice: TestOwner;
  let bob: TestOwner;
  /** The clean set's window, which the tamper cases audit again. */
  let window: { from: string; to: string };
  const singles = ['AUDIT-S1', 'AUDIT-S2', 'AUDIT-S3'];
  const BULK = 1_000;

  beforeAll(async () => {
    stack = await startPoolStack(
      {
        FEE_PER_KB: '100',
        ANCHOR_CONFIRMATIONS: '1',
        ANCHOR_BATCH_MAX_WAIT_SECONDS: '1',
        CHAIN_FOLLOWER_POLL_SECONDS: '1',
        PUBLIC_API_MAX: '10000',
      },
      { blockIntervalMs: 300 },
    );
    server = await listen(createApp(stack.deps));
    api = apiClient(server.baseUrl, stack.deps.config.auth.apiKey);
    env = testEnvironment({ ...stack.env, MONGODB_URI: stack.deps.config.mongo.uri, LOG_LEVEL: 'warn' });
    await fundAndSyncPool(stack, 8);
    alice = await loggedInOwner(server.baseUrl, stack.deps.config.auth.apiKey);
    bob = await loggedInOwner(server.baseUrl, stack.deps.config.auth.apiKey);
    await startChainFollower(stack.deps.temporal, stack.deps.config);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await stack?.close();
  });

  const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000) =>
    waitFor(what, probe, timeoutMs, { intervalMs: 200 });
  const register = async (uid: string, owner = alice.address): Promise<string> => {
    const answer = await api.adminPost('/v1/patches', registrationBody(uid, owner));
    expect(answer.status).toBe(202);
    expect(await api.waitDone(String(answer.body.statusUrl))).toMatchObject({ state: 'completed', status: 'anchored' });
    return (await patchModel(stack.deps.mongo).findById(uid).lean())!.anchor!.txid;
  };
  const allProven = (txids: string[]) =>
    until('anchor txs proven by the follower', async () => {
      const proven = await anchorTxModel(stack.deps.mongo).countDocuments({ _id: { $in: txids }, state: 'proven' });
      return proven === new Set(txids).size ? true : undefined;
    });
  const audit = async (args: string[], range = window) => {
    const run = await runPatchproof(['--json', 'audit', '--from', range.from, '--to', range.to, ...args], env);
    if (run.code !== 0 && run.code !== 1) throw new Error(`audit could not run (${run.code}): ${run.stderr}`);
    return { code: run.code, report: JSON.parse(run.stdout) as AuditReport };
  };
  const codesOf = (report: AuditReport, id: string): string[] => report.findings.filter((f) => f.subject.id === id).map((f) => f.code);

  it('audits 1,000 bulk records, three single registrations and a transfer as clean: exit 0, each proof checked against local headers', async () => {
    const from = new Date().toISOString();
    const txids = [];
    for (const uid of singles) txids.push(await register(uid));

    const items = Array.from({ length: BULK }, (_, i) => registrationBody(`AUDIT-B${String(i).padStart(4, '0')}`, alice.address));
    const batch = await api.call('POST', '/v1/patch-batches', JSON.stringify(items), {
      'content-type': 'application/json',
      'x-api-key': stack.deps.config.auth.apiKey,
      'idempotency-key': 'audit-clean',
    });
    expect(batch.status).toBe(202);
    const view = await until('the batch completed', async () => {
      const body = (await api.adminGet(String(batch.body.statusUrl))).body as { state: string; txids: string[] };
      return body.state === 'completed' || body.state === 'failed' ? body : undefined;
    });
    expect(view.state).toBe('completed');
    txids.push(...view.txids);

    const head = (await patchModel(stack.deps.mongo).findById('AUDIT-S3').lean())!.anchor!.txid;
    const message = {
      purpose: 'patchproof.transfer' as const,
      uid: 'AUDIT-S3',
      headTxid: head,
      newOwner: bob.address,
      nonce: newNonce(),
      expiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
    };
    const { pubKeyHex, signatureDerHex } = signOwnerMessage(alice.privHex, message);
    const transfer = await api.post(
      '/v1/patches/AUDIT-S3/transfers',
      {
        newOwner: bob.address,
        headTxid: head,
        nonce: message.nonce,
        expiresAt: message.expiresAt,
        ownerPubKey: pubKeyHex,
        ownerSignature: signatureDerHex,
      },
      { authorization: `Bearer ${alice.token}` },
    );
    expect(transfer.status).toBe(202);
    const transferred = await api.waitDone(String(transfer.body.statusUrl));
    expect(transferred).toMatchObject({ status: 'anchored' });
    txids.push(transferred.txid!);
    await allProven(txids);
    window = { from, to: new Date().toISOString() };

    const { code, report } = await audit([]);
    expect(report.findings).toEqual([]);
    expect(code).toBe(0);
    expect(report).toMatchObject({
      clean: true,
      checked: { registrations: BULK + singles.length, transfers: 1, anchorTxs: new Set(txids).size },
      outcomes: { verified: BULK + singles.length + 1, awaitingProof: 0, inProgress: 0, failed: 0 },
    });
    // One request per single registration and transfer, one per bulk batch: never one per bulk record.
    expect(report.checked.workflowRequests).toBe(singles.length + 1 + 1);

    const human = await runPatchproof(['audit', '--from', window.from, '--to', window.to], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`checked: ${BULK + singles.length} registrations, 1 transfers`);
    expect(human.stdout).toMatch(/throughput: \d+ records\/s \(1004 records in [\d.]+ s\)/);
    expect(human.stdout).toContain('CLEAN: no discrepancies');
  }, 180_000);

  it('finds records changed in MongoDB after anchoring, single and bulk, and a transfer: record-hash-mismatch, exit 1', async () => {
    const patches = patchModel(stack.deps.mongo);
    const transfers = transferModel(stack.deps.mongo);
    const transferId = (await transfers.findOne({ uid: 'AUDIT-S3' }).lean())!._id;
    await patches.updateOne({ _id: 'AUDIT-S1' }, { $set: { 'record.product.name': 'Forged jacket' } });
    await patches.updateOne({ _id: 'AUDIT-B0042' }, { $set: { 'record.initialOwner': bob.address } });
    await transfers.updateOne({ _id: transferId }, { $set: { 'record.to': alice.address } });
    try {
      const { code, report } = await audit([]);
      expect(code).toBe(1);
      expect(report.clean).toBe(false);
      expect(report.findingCounts).toEqual({ 'record-hash-mismatch': 3 });
      expect(codesOf(report, 'AUDIT-S1')).toEqual(['record-hash-mismatch']);
      expect(codesOf(report, 'AUDIT-B0042')).toEqual(['record-hash-mismatch']);
      expect(codesOf(report, transferId)).toEqual(['record-hash-mismatch']);
    } finally {
      await patches.updateOne({ _id: 'AUDIT-S1' }, { $set: { 'record.product.name': 'Field jacket' } });
      await patches.updateOne({ _id: 'AUDIT-B0042' }, { $set: { 'record.initialOwner': alice.address } });
      await transfers.updateOne({ _id: transferId }, { $set: { 'record.to': bob.address } });
    }
    expect((await audit([])).code).toBe(0);
  }, 120_000);

  it('finds an anchor tx whose Merkle proof does not lead to its stored header: tx-proof-mismatch, exit 1', async () => {
    const txid = (await patchModel(stack.deps.mongo).findById('AUDIT-S2').lean())!.anchor!.txid;
    const tx = (await anchorTxModel(stack.deps.mongo).findById(txid).lean())!;
    const headers = blockHeaderModel(stack.deps.mongo);
    const id = headerId('test', tx.blockHeight!);
    const { merkleRoot } = (await headers.findById(id).lean())!;
    await headers.updateOne({ _id: id }, { $set: { merkleRoot: 'ab'.repeat(32) } });
    try {
      const { code, report } = await audit([]);
      expect(code).toBe(1);
      const finding = report.findings.find((f) => f.code === 'tx-proof-mismatch');
      expect(finding).toMatchObject({ subject: { kind: 'anchor-tx', id: txid }, txid });
      expect(finding!.detail).toContain(`merkle root ${'ab'.repeat(32)}`);
      // Reported once for the tx, not again for the record it anchors (which cannot be proven through it).
      expect(report.findingCounts).toEqual({ 'tx-proof-mismatch': 1 });
      expect(report.outcomes.awaitingProof).toBeGreaterThanOrEqual(1);
    } finally {
      await headers.updateOne({ _id: id }, { $set: { merkleRoot } });
    }
  }, 120_000);

  it('finds a record whose workflow is gone, and one whose workflow result names another tx', async () => {
    const from = new Date().toISOString();
    const gone = await register('AUDIT-W1');
    const moved = await register('AUDIT-W2');
    expect(moved).not.toBe(gone);
    await allProven([gone, moved]);
    const range = { from, to: new Date().toISOString() };
    expect((await audit([], range)).code).toBe(0);

    const { temporal } = stack.deps;
    await temporal.workflowService.deleteWorkflowExecution({
      namespace: temporal.options.namespace,
      workflowExecution: { workflowId: 'registration-AUDIT-W1' },
    });
    await until('the workflow deleted', () =>
      temporal.workflow
        .getHandle('registration-AUDIT-W1')
        .describe()
        .then(
          () => undefined,
          () => true,
        ),
    );
    // Edited by hand to point at another anchor: the workflow's result still names the tx it anchored.
    await patchModel(stack.deps.mongo).updateOne({ _id: 'AUDIT-W2' }, { $set: { 'anchor.txid': gone } });

    const { code, report } = await audit([], range);
    expect(code).toBe(1);
    expect(codesOf(report, 'AUDIT-W1')).toEqual(['workflow-missing']);
    const w2 = report.findings.filter((f: Finding) => f.subject.id === 'AUDIT-W2');
    expect(w2.map((f) => f.code).sort()).toEqual(['proof-invalid', 'workflow-result-mismatch']);
    expect(w2.find((f) => f.code === 'workflow-result-mismatch')!.detail).toContain(`txid: workflow "${moved}" ≠ database "${gone}"`);

    // Past the namespace retention there is no workflow to compare: --no-workflows audits the rest.
    const withoutTemporal = await audit(['--no-workflows'], range);
    expect(codesOf(withoutTemporal.report, 'AUDIT-W1')).toEqual([]);
    expect(withoutTemporal.report.checked.workflowRequests).toBe(0);
  }, 120_000);

  it('finds an anchor tx the follower has not proven, and a record stuck anchoring', async () => {
    const follower = stack.deps.temporal.workflow.getHandle(chainFollowerWorkflowId('test'));
    await follower.terminate('audit test: the follower is down');
    try {
      const from = new Date().toISOString();
      const txid = await register('AUDIT-U1');
      const range = { from, to: new Date().toISOString() };
      expect((await anchorTxModel(stack.deps.mongo).findById(txid).lean())?.state).toBe('unproven');

      // Within the allowed time an unproven tx is awaiting its proof, not a discrepancy.
      const young = await audit([], range);
      expect(young.code).toBe(0);
      expect(young.report.outcomes).toMatchObject({ verified: 0, awaitingProof: 1 });

      const old = await audit(['--unproven-after', '0'], range);
      expect(old.code).toBe(1);
      expect(old.report.findings).toEqual([expect.objectContaining({ code: 'tx-unproven', subject: { kind: 'anchor-tx', id: txid } })]);

      await patchModel(stack.deps.mongo).updateOne({ _id: 'AUDIT-U1' }, { $set: { status: 'anchoring' } });
      const stuck = await audit(['--stuck-after', '0'], range);
      expect(stuck.code).toBe(1);
      expect(codesOf(stuck.report, 'AUDIT-U1')).toEqual(['stuck']);
    } finally {
      await startChainFollower(stack.deps.temporal, stack.deps.config);
    }
  }, 120_000);

  it('exits 2 on a window that is not one', async () => {
    const run = await runPatchproof(['audit', '--from', '2026-12-02', '--to', '2026-12-01'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--from is after --to');
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PublicKey, Signature, Transaction } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { parseAnchorScript } from '../../../src/anchoring/anchorScript';
import { ANCHOR_BATCHER_WORKFLOW_ID, anchorBatchWorkflowId } from '../../../src/anchoring/ids';
import { canonicalHash } from '../../../src/anchoring/canonical';
import { leafHash, verifyMerkleProof } from '../../../src/anchoring/merkle';
import { verifyDigestSignature } from '../../../src/chain/ecdsa';
import { startSync, waitForPoolOperation } from '../../../src/pool/launch';
import { utxoModel } from '../../../src/pool/models';
import { patchModel } from '../../../src/registration/models';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { runEntry } from '../../support/processes';
import { waitFor } from '../../support/workerProcesses';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

describe('registration through the API, anchored on the chain simulator', () => {
  let stack: PoolStack;
  let api: Listening;
  let owner: string;

  beforeAll(async () => {
    stack = await startPoolStack(
      { FEE_PER_KB: '100', ANCHOR_CONFIRMATIONS: '1', ANCHOR_BATCH_MAX_WAIT_SECONDS: '1' },
      { blockIntervalMs: 300 },
    );
    api = await listen(createApp(stack.deps));
    owner = PublicKey.fromString(stack.kms.keys.ensure('owner-test').pubKeyHex).toAddress('testnet');
    for (let i = 0; i < 4; i++) await stack.fund(stack.accounts.funding.address, 10_000 + i);
    // The pool learns of its outputs through a sync (the top-up schedule runs one every 15 minutes).
    const sync = await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test');
    await waitForPoolOperation(stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 100 });
  });
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const post = async (body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${api.baseUrl}/v1/patches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': stack.deps.config.auth.apiKey, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
  };
  const registration = (uid: string) => ({
    product: { uid_tag_id: uid, name: 'Field jacket', category: 'apparel', sku: 'FJ-01', serial_number: 'SN-77', material: 'wool' },
    metadata: { notes: 'limited run', image: 'https://img.example/fj.png', patch_location: 'left sleeve' },
    auth: { owner },
  });
  const waitAnchored = async (statusUrl: string) => {
    for (let i = 0; i < 300; i++) {
      const res = await fetch(`${api.baseUrl}${statusUrl}`, { headers: { 'x-api-key': stack.deps.config.auth.apiKey } });
      const body = (await res.json()) as { state: string; status: string; txid?: string; lastError?: string };
      if (body.state !== 'running') return body;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('registration did not finish');
  };

  it('registers, signs as the issuer over the canonical record and anchors a proof the chain backs', async () => {
    const accepted = await post(registration('PP-0001'));
    expect(accepted).toMatchObject({
      status: 202,
      body: { registrationId: 'registration-PP-0001', statusUrl: '/v1/registrations/registration-PP-0001' },
    });
    const done = await waitAnchored(accepted.body.statusUrl as string);
    expect(done).toMatchObject({ state: 'completed', status: 'anchored' });
    expect(done.lastError).toBeUndefined();
    // Earlier shapes keep their recorded histories (registration-anchored, anchor-batch-anchored, …) for replay.
    await recordHistoryIfAsked(stack.deps.temporal, 'registration-PP-0001', 'registration-settled-by-batch');
    await recordHistoryIfAsked(stack.deps.temporal, anchorBatchWorkflowId('registration:PP-0001', 1), 'anchor-batch-settled-registrations');
    await recordHistoryIfAsked(stack.deps.temporal, ANCHOR_BATCHER_WORKFLOW_ID, 'anchor-batcher-group-commit', undefined, {
      running: true,
    });
    // The hot path: one activity, one signal from the batch, at most 20 history events.
    const history = await stack.deps.temporal.workflow.getHandle('registration-PP-0001').fetchHistory();
    const activityTypes = history.events!.flatMap((e) =>
      e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name] : [],
    );
    expect(activityTypes).toEqual(['prepareRegistration']);
    expect(history.events!.length).toBeLessThanOrEqual(20);

    const patch = (await patchModel(stack.deps.mongo).findById('PP-0001').lean())!;
    expect(patch.recordHash).toBe(canonicalHash(patch.record as never));
    expect(patch.record).toMatchObject({ uid: 'PP-0001', initialOwner: owner, product: { sku: 'FJ-01' } });
    expect(patch.record).not.toHaveProperty('product.uid_tag_id');
    // The issuer's signature verifies over sha256(canonical record) with the issuer key's public key.
    const issuerKey = PublicKey.fromString(stack.kms.keys.describe('issuer').pubKeyHex);
    expect(patch.issuerSignature?.pubKeyHex).toBe(issuerKey.toString());
    const signature = Signature.fromDER(patch.issuerSignature!.signatureDerHex, 'hex');
    expect(verifyDigestSignature([...Buffer.from(patch.recordHash, 'hex')], signature, issuerKey)).toBe(true);

    // The anchor transaction commits to the proof's root, and the proof leads from the record to it.
    const proof = patch.anchor!.proof!;
    expect(proof).toMatchObject({ leaf: leafHash(patch.recordHash), count: 1, index: 0 });
    expect(verifyMerkleProof(patch.recordHash, proof)).toBe(true);
    const raw = await (await fetch(`${stack.simulator.baseUrl}/v1/bsv/test/tx/${patch.anchor!.txid}/hex`)).text();
    const tx = Transaction.fromHex(raw);
    expect(parseAnchorScript(tx.outputs[0]!.lockingScript.toHex())).toEqual({ root: proof.root, count: 1 });
    expect(patch.anchor!.blockHeight).toBeGreaterThan(0);
    // Its input came from the pool and is spent there; no reservation is left behind.
    expect(await utxoModel(stack.deps.mongo).countDocuments({ spentBy: patch.anchor!.txid })).toBe(1);
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
  });

  it('verifies an anchored patch from its parts, under both paths, and refuses a tampered record or proof', async () => {
    const verify = async (path: string) => {
      const res = await fetch(`${api.baseUrl}${path}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> & { status: string; reason?: string } };
    };
    const authentic = await verify('/v1/patches/PP-0001/verify');
    expect(authentic.status).toBe(200);
    expect(authentic.body).toMatchObject({
      uid: 'PP-0001',
      status: 'authentic',
      issuerSignature: { valid: true, keyIdentifier: 'issuer' },
      ownership: { currentOwner: owner, chain: [{ kind: 'registration', owner }] },
      anchor: { count: 1, index: 0, vout: 0 },
    });
    expect((authentic.body.anchor as { confirmations: number }).confirmations).toBeGreaterThanOrEqual(1);
    // Blocks keep coming every 300 ms, so only the confirmation count may differ between the two answers.
    const withoutConfirmations = (body: Record<string, unknown>) => ({ ...body, anchor: { ...(body.anchor as object), confirmations: 0 } });
    expect(withoutConfirmations((await verify('/v1/patches/verify/PP-0001')).body)).toEqual(withoutConfirmations(authentic.body));
    expect((await verify('/v1/patches/PP-NOPE/verify')).body).toEqual({ uid: 'PP-NOPE', status: 'not_found' });

    const patches = patchModel(stack.deps.mongo);
    const original = (await patches.findById('PP-0001').lean())!;
    try {
      await patches.updateOne({ _id: 'PP-0001' }, { $set: { 'record.product.sku': 'FAKE' } });
      expect((await verify('/v1/patches/PP-0001/verify')).body).toMatchObject({
        status: 'invalid',
        reason: expect.stringMatching(/no longer hashes/),
      });
      await patches.replaceOne({ _id: 'PP-0001' }, original);
      const forged = { ...original.anchor!.proof, root: 'cd'.repeat(32) };
      await patches.updateOne({ _id: 'PP-0001' }, { $set: { 'anchor.proof': forged } });
      expect((await verify('/v1/patches/PP-0001/verify')).body).toMatchObject({
        status: 'invalid',
        reason: expect.stringMatching(/Merkle proof/),
      });
    } finally {
      await patches.replaceOne({ _id: 'PP-0001' }, original);
    }
    expect((await verify('/v1/patches/PP-0001/verify')).body.status).toBe('authentic');
    expect((await verify('/v1/patches/bad%20uid/verify')).status).toBe(400);
    // The chain service failing is "cannot check now" (503), never a verdict.
    await stack.simulator.setFaults({ error5xxNext: 10 });
    const unavailable = await verify('/v1/patches/PP-0001/verify');
    await stack.simulator.setFaults({ error5xxNext: 0 });
    expect(unavailable).toMatchObject({ status: 503, body: { error: { code: 'DEPENDENCY_UNAVAILABLE' } } });
  });

  it('serves a proof bundle that the CLI checks with a chain lookup only', async () => {
    const res = await fetch(`${api.baseUrl}/v1/patches/PP-0001/proof`);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Record<string, unknown>;
    expect(bundle).toMatchObject({ format: 'patchproof-proof/1', uid: 'PP-0001', network: 'test' });
    const dir = mkdtempSync(path.join(tmpdir(), 'proof-'));
    const file = path.join(dir, 'PP-0001.proof.json');
    writeFileSync(file, JSON.stringify(bundle));
    // Only the chain service: no MongoDB, Redis or API in the CLI's environment.
    const env = { WOC_BASE_URL: stack.simulator.baseUrl, WOC_NETWORK: 'test', LOG_LEVEL: 'warn' };
    const issuer = stack.kms.keys.describe('issuer').pubKeyHex;
    const ok = await runEntry('ops/cli/patchproof.ts', ['verify-proof', file, '--issuer-pubkey', issuer], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^PP-0001: AUTHENTIC, signed by the expected issuer key, anchored in [0-9a-f]{64}/);

    const forged = path.join(dir, 'forged.json');
    writeFileSync(forged, JSON.stringify({ ...bundle, record: { ...(bundle.record as object), initialOwner: 'someone else' } }));
    const refused = await runEntry('ops/cli/patchproof.ts', ['verify-proof', forged], env);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('INVALID: the record no longer hashes to the signed digest');
    const otherKey = await runEntry('ops/cli/patchproof.ts', ['verify-proof', file, '--issuer-pubkey', '02' + 'ab'.repeat(32)], env);
    expect(otherKey.code).toBe(1);
    expect((await fetch(`${api.baseUrl}/v1/patches/PP-NOPE/proof`)).status).toBe(404);
  });

  it('registers a uid once when twenty requests race, and answers a same-key retry with the same 202', async () => {
    const body = registration('PP-RACE');
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(body)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    expect(answers.find((a) => a.status === 409)!.body.error).toMatchObject({ code: 'CONFLICT' });
    expect(await patchModel(stack.deps.mongo).countDocuments({ _id: 'PP-RACE' })).toBe(1);
    await waitAnchored('/v1/registrations/registration-PP-RACE');

    const first = await post(registration('PP-IDEM'), { 'idempotency-key': 'retry-1' });
    expect(first.status).toBe(202);
    await waitAnchored(first.body.statusUrl as string);
    expect(await post(registration('PP-IDEM'), { 'idempotency-key': 'retry-1' })).toMatchObject({ status: 202, body: first.body });
    expect((await post({ ...registration('PP-IDEM'), metadata: { notes: 'changed' } }, { 'idempotency-key': 'retry-1' })).status).toBe(409);
  });

  it('answers bad input with a 4xx envelope and starts nothing', async () => {
    const unknown = await post({ ...registration('PP-BAD-1'), extra: true, product: { uid_tag_id: 'PP-BAD-1', colour: 'red' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error!.code).toBe('VALIDATION_FAILED');
    expect(JSON.stringify(unknown.body.error)).toMatch(/colour/);
    expect(JSON.stringify(unknown.body.error)).toMatch(/extra/);
    expect((await post({ ...registration('PP-BAD-2'), auth: { owner: '1BoatSLRHtKNngkdXEeobR76b53LETtpyT' } })).status).toBe(400);
    expect((await post({ ...registration('PP-BAD-3'), product: { uid_tag_id: 42 } })).status).toBe(400);
    expect((await post({ ...registration('PP-BAD-4'), auth: { owner: { $ne: null } } })).status).toBe(400);
    expect((await post('{"product":')).status).toBe(400);
    expect((await post(registration('PP BAD'))).status).toBe(400);
    expect(await patchModel(stack.deps.mongo).countDocuments({ _id: /^PP-BAD/ })).toBe(0);
  });

  it('waits for funds, holding nothing, when the pool has no output to anchor with, and anchors once it is funded', async () => {
    // Earlier batches add their change to the pool once confirmed, after their records completed: let them finish first.
    for (let quiet = 0; quiet < 2;) {
      let running = 0;
      for await (const _ of stack.deps.temporal.workflow.list({
        query: "WorkflowType = 'anchorBatchWorkflow' AND ExecutionStatus = 'Running'",
      }))
        running++;
      quiet = running === 0 ? quiet + 1 : 0;
      await new Promise((r) => setTimeout(r, 500));
    }
    await utxoModel(stack.deps.mongo).updateMany({ status: 'available' }, { $set: { status: 'spent', spentBy: 'test-drain' } });
    const accepted = await post(registration('PP-DRY'));
    // Its batch waits for funds rather than failing: operators find it by its status, and it holds no output.
    const waiting = await waitFor(
      'the batch to wait for funds',
      async () => {
        for await (const run of stack.deps.temporal.workflow.list({
          query: "WorkflowType = 'anchorBatchWorkflow' AND PatchProofStatus = 'waiting-for-funds'",
        }))
          return run.workflowId;
        return undefined;
      },
      60_000,
      { intervalMs: 250 },
    );
    expect((await patchModel(stack.deps.mongo).findById('PP-DRY').lean())!.status).toBe('pending');
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);

    // Funded and synced, as the top-up schedule would: the waiting batch anchors at its next try.
    await stack.fund(stack.accounts.funding.address, 10_000);
    const sync = await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test');
    await waitForPoolOperation(stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 100 });
    const deadline = Date.now() + 120_000;
    let done = await waitAnchored(accepted.body.statusUrl as string).catch(() => undefined);
    while (!done && Date.now() < deadline) done = await waitAnchored(accepted.body.statusUrl as string).catch(() => undefined);
    expect(done).toMatchObject({ state: 'completed', status: 'anchored' });
    await recordHistoryIfAsked(stack.deps.temporal, waiting, 'anchor-batch-settled-waited-for-funds');
    const verdict = (await (await fetch(`${api.baseUrl}/v1/patches/PP-DRY/verify`)).json()) as { status: string };
    expect(verdict.status).toBe('authentic');
  });
});

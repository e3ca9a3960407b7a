import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PublicKey, Transaction } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { parseAnchorScript } from '../../../src/anchoring/anchorScript';
import { patchBatchChunkModel, patchBatchModel, type PatchBatchChunkDocument } from '../../../src/bulkRegistration/models';
import { bulkRegistrationWorkflowId } from '../../../src/bulkRegistration/ids';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import { reservationModel } from '../../../src/pool/models';
import { checkProofBundle, PROOF_BUNDLE_FORMAT, type ProofBundle } from '../../../src/registration/proofBundle';
import { merkleProofs, type MerkleProof } from '../../../src/anchoring/merkle';
import { patchModel, type PatchDocument } from '../../../src/registration/models';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { runEntry } from '../../support/processes';
import { waitFor } from '../../support/workerProcesses';
import { testEnvironment } from '../../support/stack';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

interface BatchAnswer {
  batchId: string;
  statusUrl: string;
  itemCount: number;
  accepted: number;
  rejected: { index: number; error: { code: string; message: string; issues?: unknown[] } }[];
}
interface BatchView {
  state: string;
  counts: Record<string, number>;
  txids: string[];
  timings: Record<string, string>;
}
interface ItemPage {
  items: {
    index: number;
    uid: string | null;
    state: string;
    registrationId?: string;
    txid?: string;
    proofUrl?: string;
    error?: { code: string; registrationId?: string };
  }[];
  nextCursor: number | null;
}

/** A bulk record's proof bundle from its chunk: inclusion under the signed tree head, the tree head in the anchor. */
const chunkProofs = new WeakMap<PatchBatchChunkDocument, MerkleProof[]>();
function bundleFromChunk(record: PatchDocument, chunk: PatchBatchChunkDocument): ProofBundle {
  const leaf = chunk.recordHashes.indexOf(record.recordHash);
  if (!chunkProofs.has(chunk)) chunkProofs.set(chunk, merkleProofs(chunk.recordHashes));
  return {
    format: PROOF_BUNDLE_FORMAT,
    network: 'test',
    uid: record._id,
    record: record.record,
    recordHash: record.recordHash,
    signedTreeHead: { treeHead: chunk.treeHead!, inclusion: chunkProofs.get(chunk)![leaf]! },
    issuerSignature: chunk.issuerSignature!,
    anchor: { ...chunk.anchor!.proof, txid: chunk.anchor!.txid, vout: chunk.anchor!.vout, blockHeight: record.anchor!.blockHeight },
  };
}

describe('bulk registration through the API, anchored on the chain simulator', () => {
  let stack: PoolStack;
  let api: Listening;
  let client: ReturnType<typeof apiClient>;
  let owner: string;
  let issuerPubKeyHex: string;

  beforeAll(async () => {
    stack = await startPoolStack(
      { FEE_PER_KB: '100', ANCHOR_CONFIRMATIONS: '1', ANCHOR_BATCH_MAX_WAIT_SECONDS: '1' },
      { blockIntervalMs: 300 },
    );
    api = await listen(createApp(stack.deps));
    client = apiClient(api.baseUrl, stack.deps.config.auth.apiKey);
    owner = PublicKey.fromString(stack.kms.keys.ensure('owner-test').pubKeyHex).toAddress('testnet');
    issuerPubKeyHex = stack.kms.keys.describe(stack.deps.config.kms.issuerKeyIdentifier).pubKeyHex;
    await fundAndSyncPool(stack, 4);
  });
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const postBatch = (body: string, key: string | undefined, contentType = 'application/json') =>
    client.call('POST', '/v1/patch-batches', body, {
      'content-type': contentType,
      'x-api-key': stack.deps.config.auth.apiKey,
      ...(key && { 'idempotency-key': key }),
    });
  const waitCompleted = async (statusUrl: string): Promise<BatchView> => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const view = (await client.adminGet(statusUrl)).body as unknown as BatchView;
      if (view.state === 'completed' || view.state === 'failed') return view;
      if (Date.now() > deadline) throw new Error(`batch still ${view.state}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const allItems = async (statusUrl: string, state?: string) => {
    const items: ItemPage['items'] = [];
    let cursor: number | null = null;
    do {
      const query = new URLSearchParams({ limit: '1000', ...(state && { state }), ...(cursor !== null && { cursor: String(cursor) }) });
      const page = (await client.adminGet(`${statusUrl}/items?${query.toString()}`)).body as unknown as ItemPage;
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return items;
  };

  it('registers 2,000 items with 10 invalid and 5 already registered: exact outcomes, one signing request, one transaction, proofs that verify', async () => {
    const already = ['BULK-00003', 'BULK-00500', 'BULK-01001', 'BULK-01002', 'BULK-01997'];
    const singles = await Promise.all(already.map((uid) => client.adminPost('/v1/patches', registrationBody(uid, owner))));
    expect(singles.map((s) => s.status)).toEqual(already.map(() => 202));
    // Anchored before the batch starts, so every KMS request after this point is the batch's.
    for (const single of singles) expect((await client.waitDone(String(single.body.statusUrl))).status).toBe('anchored');
    const invalidAt = new Set([7, 100, 333, 999, 1000, 1200, 1500, 1777, 1998, 1999]);
    const items = Array.from({ length: 2000 }, (_, i) => {
      const body: Record<string, unknown> = registrationBody(`BULK-${String(i).padStart(5, '0')}`, owner);
      if (invalidAt.has(i)) return i % 2 === 0 ? { ...body, extra: true } : { ...body, auth: { owner: 'not-an-address' } };
      return body;
    });
    const signsBefore = stack.signRequests();

    const answer = await postBatch(JSON.stringify(items), 'bulk-2000');
    expect(answer.status).toBe(202);
    const accepted = answer.body as unknown as BatchAnswer;
    expect(accepted).toMatchObject({ itemCount: 2000, accepted: 1990 });
    expect(accepted.rejected.map((r) => r.index)).toEqual([...invalidAt].sort((a, b) => a - b));
    expect(accepted.rejected.every((r) => r.error.code === 'VALIDATION_FAILED' && (r.error.issues?.length ?? 0) > 0)).toBe(true);

    // The same key and items again: the same batch, nothing new.
    const again = await postBatch(JSON.stringify(items), 'bulk-2000');
    expect(again.status).toBe(202);
    expect(again.body.batchId).toBe(accepted.batchId);
    // The same key with other items: refused, naming the batch.
    const other = await postBatch(JSON.stringify(items.slice(1)), 'bulk-2000');
    expect(other.status).toBe(409);
    expect(other.body.error?.details).toMatchObject({ batchId: accepted.batchId });

    const view = await waitCompleted(accepted.statusUrl);
    await recordHistoryIfAsked(stack.deps.temporal, bulkRegistrationWorkflowId(accepted.batchId), 'bulk-registration-completed');
    expect(view.state).toBe('completed');
    expect(view.counts).toEqual({ accepted: 0, duplicate: 5, invalid: 10, anchoring: 0, anchored: 1985, failed: 0 });
    expect(view.txids).toHaveLength(1);
    expect(Object.keys(view.timings)).toEqual(
      expect.arrayContaining(['createdAt', 'acceptedAt', 'sealedAt', 'signedAt', 'broadcastAt', 'completedAt']),
    );
    // One KMS request signs both tree heads, one signs the anchor transaction's input.
    expect(stack.signRequests() - signsBefore).toBe(2);

    const outcomes = await allItems(accepted.statusUrl);
    expect(outcomes.map((o) => o.index)).toEqual(items.map((_, i) => i));
    for (const outcome of outcomes) {
      const uid = `BULK-${String(outcome.index).padStart(5, '0')}`;
      if (invalidAt.has(outcome.index)) expect(outcome).toMatchObject({ state: 'invalid', error: { code: 'VALIDATION_FAILED' } });
      else if (already.includes(uid))
        expect(outcome).toMatchObject({ uid, state: 'duplicate', error: { code: 'DUPLICATE', registrationId: `registration-${uid}` } });
      else expect(outcome).toMatchObject({ uid, state: 'anchored', txid: view.txids[0], proofUrl: `/v1/patches/${uid}/proof` });
    }
    expect(await allItems(accepted.statusUrl, 'duplicate')).toHaveLength(5);
    expect((await allItems(accepted.statusUrl, 'anchored')).length).toBe(1985);

    // One record per uid: the singles kept theirs, the batch holds the rest.
    const patches = patchModel(stack.deps.mongo);
    expect(await patches.countDocuments({ batchId: accepted.batchId, status: 'anchored' })).toBe(1985);
    for (const uid of already) expect((await patches.findById(uid).lean())!.registrationId).toBe(`registration-${uid}`);

    // The transaction commits to the root of the two tree heads.
    const chunks = await patchBatchChunkModel(stack.deps.mongo).find({ batchId: accepted.batchId }).lean();
    // 1,990 valid items in chunks of 1,000: the duplicates take no leaf.
    expect(chunks.sort((a, b) => a.chunk - b.chunk).map((c) => c.size + c.duplicates)).toEqual([1000, 990]);
    expect(chunks.reduce((sum, c) => sum + c.size, 0)).toBe(1985);
    const raw = await (await fetch(`${stack.simulator.baseUrl}/v1/bsv/test/tx/${view.txids[0]}/hex`)).text();
    const anchored = parseAnchorScript(Transaction.fromHex(raw).outputs[0]!.lockingScript.toHex());
    expect(anchored).toEqual({ root: chunks[0]!.anchor!.proof.root, count: 2 });

    // Every registered item's proof bundle verifies offline against the pinned issuer key: each bundle is built as
    // the API builds it (one chunk read per chunk), a sample also through GET /proof, with one chain lookup.
    const chain = chainClientsFromConfig(stack.deps.config).woc;
    const anchorTx = await chain.getTx(view.txids[0]!);
    const woc = { getTx: (txid: string) => (txid === view.txids[0] ? Promise.resolve(anchorTx) : chain.getTx(txid)) };
    const anchoredUids = outcomes.filter((o) => o.state === 'anchored').map((o) => o.uid!);
    const records = await patches.find({ batchId: accepted.batchId }).lean();
    expect(records).toHaveLength(anchoredUids.length);
    const chunkDocs = new Map(chunks.map((c) => [c.chunk, c]));
    for (const uid of [anchoredUids[0]!, anchoredUids[999]!, anchoredUids.at(-1)!]) {
      const served = (await client.get(`/v1/patches/${uid}/proof`)).body as unknown as ProofBundle;
      const record = records.find((r) => r._id === uid)!;
      expect(served).toMatchObject({ ...bundleFromChunk(record, chunkDocs.get(record.batchChunk!)!), transfers: [] });
      expect(await checkProofBundle(served, { woc, requiredConfirmations: 1, expectedIssuerPubKeyHex: issuerPubKeyHex })).toMatchObject({
        status: 'authentic',
      });
    }
    const verification = await client.get(`/v1/patches/${anchoredUids[1234]!}/verify`);
    expect(verification.body).toMatchObject({
      status: 'authentic',
      issuerSignature: { valid: true },
      signedTreeHead: { treeHead: { kind: 'patchproof.tree-head' }, inclusion: { count: expect.any(Number) } },
    });

    // A bundle whose record was changed after signing does not verify.
    const bundle = (await client.get(`/v1/patches/${anchoredUids[0]!}/proof`)).body as unknown as ProofBundle;
    const forged = { ...bundle, record: { ...bundle.record, initialOwner: 'someone else' } };
    forged.recordHash = bundle.recordHash;
    expect((await checkProofBundle(forged, { woc, requiredConfirmations: 1 })).status).toBe('invalid');
    // Nor does a genuine bundle relabelled with another uid, or a signed tree head passed off as a record.
    const relabelled = { ...bundle, uid: anchoredUids[1]! };
    expect(await checkProofBundle(relabelled, { woc, requiredConfirmations: 1 })).toMatchObject({ status: 'invalid' });
    const head = chunks.find((c) => c.chunk === 0)!;
    const headAsRecord: ProofBundle = {
      ...bundle,
      record: head.treeHead!,
      recordHash: head.treeHeadHash!,
      signedTreeHead: undefined,
      anchor: { ...head.anchor!.proof, txid: head.anchor!.txid, vout: 0, blockHeight: null },
    };
    expect(await checkProofBundle(headAsRecord, { woc, requiredConfirmations: 1 })).toMatchObject({
      status: 'invalid',
      reason: 'the record is not the registration of this patch',
    });

    // The workflow is findable by its batch, nothing stays reserved, and a single registration of a batch uid conflicts.
    const description = await stack.deps.temporal.workflow.getHandle(bulkRegistrationWorkflowId(accepted.batchId)).describe();
    expect(description.typedSearchAttributes.get({ name: 'BatchId', type: 'KEYWORD' } as never)).toBe(accepted.batchId);
    expect(description.typedSearchAttributes.get({ name: 'PatchProofStatus', type: 'KEYWORD' } as never)).toBe('completed');
    expect(
      await reservationModel(stack.deps.mongo).countDocuments({ owner: { $regex: `^${bulkRegistrationWorkflowId(accepted.batchId)}` } }),
    ).toBe(0);
    const conflict = await client.adminPost('/v1/patches', registrationBody('BULK-00001', owner));
    expect(conflict).toMatchObject({ status: 409, body: { error: { details: { statusUrl: accepted.statusUrl } } } });

    // Last, after every API call: 1,985 signature checks keep this process busy for a while.
    for (const record of records) {
      const bundle = bundleFromChunk(record, chunkDocs.get(record.batchChunk!)!);
      const verdict = await checkProofBundle(bundle, { woc, requiredConfirmations: 1, expectedIssuerPubKeyHex: issuerPubKeyHex });
      if (verdict.status !== 'authentic') throw new Error(`${record._id}: ${JSON.stringify(verdict)}`);
    }
  }, 300_000);

  it('takes NDJSON, and refuses a malformed line, an oversize batch and a missing key without storing a batch', async () => {
    const batches = patchBatchModel(stack.deps.mongo);
    const before = await batches.countDocuments({});
    const line = (i: number) => JSON.stringify(registrationBody(`ND-${i}`, owner));

    const malformed = await postBatch(`${line(1)}\n${line(2)}\n{"product": \n${line(3)}\n`, 'nd-bad', 'application/x-ndjson');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: 'MALFORMED_JSON', details: { line: 3, index: 2 } });

    const tooMany = Array.from({ length: 10_001 }, (_, i) => ({ product: { uid_tag_id: `X-${i}` }, auth: { owner } }));
    const oversize = await postBatch(JSON.stringify(tooMany), 'too-many');
    expect(oversize.status).toBe(413);
    expect(oversize.body.error?.message).toMatch(/at most 10000 items; this one has 10001/);

    expect((await postBatch(JSON.stringify([registrationBody('ND-9', owner)]), undefined)).status).toBe(400);
    expect((await postBatch('{"not":"an array"}', 'not-array')).status).toBe(400);
    expect((await postBatch('[{"product":{"uid_tag_id":"A","$gt":""}}]', 'operator')).body.error?.code).toBe('NOSQL_OPERATOR_REJECTED');
    expect((await postBatch('a,b,c', 'csv', 'text/csv')).status).toBe(415);
    expect(await batches.countDocuments({})).toBe(before);

    const ok = await postBatch(`${line(1)}\n\n${line(2)}\r\n${line(1)}\n`, 'nd-ok', 'application/x-ndjson');
    expect(ok.status).toBe(202);
    expect(ok.body).toMatchObject({ itemCount: 3, accepted: 2, rejected: [{ index: 2, error: { code: 'DUPLICATE' } }] });
    const view = await waitCompleted(String(ok.body.statusUrl));
    expect(view.counts).toMatchObject({ anchored: 2, duplicate: 1 });
  }, 120_000);

  it('reads at most BATCH_MAX_CONCURRENT batch bodies at once in a process, answering 429 to one more and taking it later', async () => {
    const config = { ...stack.deps.config, http: { ...stack.deps.config.http, batchMaxConcurrent: 1 } };
    const gated = await listen(createApp({ ...stack.deps, config }));
    try {
      const body = JSON.stringify([registrationBody('GATE-1', owner)]);
      // A client that sends its batch slowly: half the body, then a pause.
      const slow = http.request(`${gated.baseUrl}/v1/patch-batches`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-api-key': stack.deps.config.auth.apiKey,
          'idempotency-key': 'gate-slow',
        },
      });
      const slowAnswer = new Promise<number>((resolve, reject) => {
        slow.on('response', (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        slow.on('error', reject);
      });
      slow.write(body.slice(0, 20));
      const post = async (key: string) => {
        const res = await fetch(`${gated.baseUrl}/v1/patch-batches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': stack.deps.config.auth.apiKey, 'idempotency-key': key },
          body: JSON.stringify([registrationBody(key, owner)]),
        });
        return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error?: unknown } };
      };
      const refused = await waitFor('the slow batch to hold the only slot', async () => {
        const answer = await post('GATE-2');
        return answer.status === 429 ? answer : undefined;
      });
      expect(refused.body.error).toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterSeconds: 5 } });
      expect(refused.retryAfter).toBe('5');
      slow.end(body.slice(20));
      expect(await slowAnswer).toBe(202);
      // The slot is free again once the slow batch was answered.
      expect((await post('GATE-3')).status).toBe(202);
    } finally {
      await gated.close();
    }
  });

  it('registers a CSV file with patchproof register-batch --wait: a progress line, a results file, exit 1 for the invalid row', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'register-batch-'));
    const file = path.join(dir, 'run-42.csv');
    const rows = [
      'uid_tag_id,owner,name,notes',
      `CSV-1,${owner},Jacket,"first, of two"`,
      `CSV-2,${owner},Cap,`,
      `CSV-3,not-an-address,Scarf,`,
    ];
    writeFileSync(file, `${rows.join('\n')}\n`);
    const env = { ...testEnvironment(stack.env), MONGODB_URI: stack.deps.config.mongo.uri, API_KEY: stack.deps.config.auth.apiKey };
    const result = await runEntry('ops/cli/patchproof.ts', ['register-batch', file, '--wait', '--api-url', api.baseUrl], env, 120_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/3 items, 2 accepted, 1 refused at once/);
    expect(result.stdout).toMatch(/: completed; 1 invalid, 2 anchored; txid [0-9a-f]{64}; results in /);
    const results = readFileSync(path.join(dir, 'run-42.results.csv'), 'utf8').trim().split('\n');
    expect(results[0]).toBe('index,uid,state,registrationId,txid,error');
    expect(results[1]).toMatch(/^0,CSV-1,anchored,pb-[0-9a-f]{24}-00000,[0-9a-f]{64},$/);
    expect(results[3]).toMatch(/^2,,invalid,,,The item does not match the registration schema\.$/);
    // The CSV's quoted comma arrived as one field of the record.
    expect((await patchModel(stack.deps.mongo).findById('CSV-1').lean())!.record).toMatchObject({ metadata: { notes: 'first, of two' } });

    // The same file again reaches the same batch (its key is the file's hash): nothing new is registered.
    const again = await runEntry('ops/cli/patchproof.ts', ['--json', 'register-batch', file, '--api-url', api.baseUrl], env, 60_000);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ batchId: expect.stringMatching(/^pb-/), accepted: 2 });
  }, 180_000);
});

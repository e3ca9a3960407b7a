import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { waitFor } from '../../support/workerProcesses';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Beef, PublicKey } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { startChainFollower } from '../../../src/chainFollower/launch';
import { anchorTxModel } from '../../../src/chainFollower/models';
import { patchModel } from '../../../src/registration/models';
import type { ProofBundle } from '../../../src/registration/proofBundle';
import { listen, type Listening } from '../../support/http';
import { runIndependentVerifier } from '../../support/independentVerifier';
import { apiClient, fundAndSyncPool, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';
import { runEntry } from '../../support/processes';
import { flipByte } from '../../support/proofFixtures';
import { testEnvironment } from '../../support/stack';

interface CliVerdict {
  uid: string;
  format: string;
  status: string;
  reason?: string;
  checked?: string[];
  unchecked?: string[];
}

/** One byte of the first BUMP node that is not the txid, flipped where it sits in the BEEF. */
function flipBumpNode(bundle: ProofBundle): string {
  const beef = bundle.anchor.beef!;
  const node = Beef.fromString(beef)
    .bumps[0]!.path.flat()
    .find((leaf) => leaf.hash && leaf.hash !== bundle.anchor.txid)!.hash!;
  const at = beef.indexOf(Buffer.from(node, 'hex').reverse().toString('hex'));
  return flipByte(beef.slice(0, at + 64), -1) + beef.slice(at + 64);
}

describe('proof bundles of format 2 from the real stack, checked by verify-proof and by an independent verifier', () => {
  let stack: PoolStack;
  let api: Listening;
  let client: ReturnType<typeof apiClient>;
  let owner: string;
  let env: Record<string, string>;
  const dir = mkdtempSync(path.join(tmpdir(), 'proof-v2-'));

  beforeAll(async () => {
    stack = await startPoolStack(
      { FEE_PER_KB: '100', ANCHOR_CONFIRMATIONS: '1', ANCHOR_BATCH_MAX_WAIT_SECONDS: '1', CHAIN_FOLLOWER_POLL_SECONDS: '1' },
      { blockIntervalMs: 300 },
    );
    api = await listen(createApp(stack.deps));
    client = apiClient(api.baseUrl, stack.deps.config.auth.apiKey);
    owner = PublicKey.fromString(stack.kms.keys.ensure('owner-test').pubKeyHex).toAddress('testnet');
    env = { ...testEnvironment(stack.env), MONGODB_URI: stack.deps.config.mongo.uri };
    await fundAndSyncPool(stack, 6);
    await startChainFollower(stack.deps.temporal, stack.deps.config);
  });
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000) =>
    waitFor(what, probe, timeoutMs, { intervalMs: 250 });
  const chainRequests = async () => (await stack.deps.metrics.chainRequestsByCaller.get()).values.reduce((n, v) => n + v.value, 0);

  it('registers 12 single and 8 bulk patches, serves 20 self-contained bundles with no chain request, and both verifiers agree on all 20 with 3 tampered', async () => {
    // Single registrations, in groups so batch anchoring puts several in one transaction and some in their own.
    const singles = Array.from({ length: 12 }, (_, i) => `PV2-S${String(i).padStart(2, '0')}`);
    for (const group of [singles.slice(0, 5), singles.slice(5, 9), singles.slice(9)]) {
      const answers = await Promise.all(group.map((uid) => client.adminPost('/v1/patches', registrationBody(uid, owner))));
      for (const answer of answers) {
        expect(answer.status).toBe(202);
        expect((await client.waitDone(String(answer.body.statusUrl), 90_000)).status).toBe('anchored');
      }
    }
    // A bulk registration: a signed tree head per chunk, one transaction for the batch.
    const bulk = Array.from({ length: 8 }, (_, i) => `PV2-B${String(i).padStart(2, '0')}`);
    const batch = await client.call('POST', '/v1/patch-batches', JSON.stringify(bulk.map((uid) => registrationBody(uid, owner))), {
      'content-type': 'application/json',
      'x-api-key': stack.deps.config.auth.apiKey,
      'idempotency-key': 'proof-v2-bulk',
    });
    expect(batch).toMatchObject({ status: 202 });
    await until('the bulk batch completed', async () => {
      const view = (await client.adminGet(String(batch.body.statusUrl))).body as { state: string };
      if (view.state === 'failed') throw new Error('bulk batch failed');
      return view.state === 'completed' ? true : undefined;
    });
    const uids = [...singles, ...bulk];

    // The follower proves each anchor tx; the bytes it builds BEEF from were kept at broadcast, not fetched.
    const txids = new Set<string>();
    for (const uid of uids) txids.add((await patchModel(stack.deps.mongo).findById(uid).lean())!.anchor!.txid);
    expect(txids.size).toBeGreaterThan(2);
    for (const txid of txids) {
      await until(`${txid} proven`, async () =>
        (await anchorTxModel(stack.deps.mongo).findById(txid).lean())?.state === 'proven' ? true : undefined,
      );
    }
    const requestsBefore = await chainRequests();
    const bundles: ProofBundle[] = [];
    for (const uid of uids) {
      const res = await fetch(`${api.baseUrl}/v1/patches/${uid}/proof`);
      expect(res.status).toBe(200);
      bundles.push((await res.json()) as ProofBundle);
    }
    expect(await chainRequests()).toBe(requestsBefore);
    expect(bundles.map((b) => b.format)).toEqual(uids.map(() => 'patchproof-proof/2'));
    expect(bundles.filter((b) => b.signedTreeHead)).toHaveLength(8);
    for (const txid of txids) expect((await anchorTxModel(stack.deps.mongo).findById(txid).lean())?.rawHex).toMatch(/^([0-9a-f]{2})+$/);
    const v1 = (await (await fetch(`${api.baseUrl}/v1/patches/${uids[0]}/proof?format=1`)).json()) as ProofBundle;
    expect(v1).toMatchObject({ format: 'patchproof-proof/1', anchor: { txid: bundles[0]!.anchor.txid } });
    expect(v1.anchor.beef).toBeUndefined();

    // Three tampered: a byte of the BEEF's transaction, a BUMP node, the block header's merkle root.
    const tampered = new Map<number, ProofBundle>([
      [2, { ...bundles[2]!, anchor: { ...bundles[2]!.anchor, beef: flipByte(bundles[2]!.anchor.beef!, -3) } }],
      [7, { ...bundles[7]!, anchor: { ...bundles[7]!.anchor, beef: flipBumpNode(bundles[7]!) } }],
      [15, { ...bundles[15]!, anchor: { ...bundles[15]!.anchor, blockHeader: flipByte(bundles[15]!.anchor.blockHeader!, 40) } }],
    ]);
    const files = bundles.map((bundle, i) => {
      const file = path.join(dir, `${bundle.uid}.proof.json`);
      writeFileSync(file, JSON.stringify(tampered.get(i) ?? bundle));
      return file;
    });
    const keysFile = path.join(dir, 'keys.json');
    writeFileSync(keysFile, await (await fetch(`${api.baseUrl}/.well-known/patchproof-keys.json`)).text());

    const headersFile = path.join(dir, 'headers.json');
    const exported = await runEntry('ops/cli/patchproof.ts', ['headers', 'export', '--out', headersFile], env, 60_000);
    expect(exported).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/\d+ test headers \(heights \d+–\d+\) written to /) as unknown,
    });
    expect(JSON.parse(readFileSync(headersFile, 'utf8'))).toMatchObject({ format: 'patchproof-headers/1', network: 'test' });

    const ours = await runEntry(
      'ops/cli/patchproof.ts',
      ['--json', 'verify-proof', ...files, '--headers', headersFile, '--keys', keysFile],
      env,
      90_000,
    );
    expect(ours.code).toBe(1);
    const ourVerdicts = JSON.parse(ours.stdout) as CliVerdict[];
    const independent = await runIndependentVerifier(['--headers', headersFile, '--keys', keysFile, ...files]);
    expect(independent.code).toBe(1);

    expect(ourVerdicts.map((v) => v.uid)).toEqual(uids);
    expect(independent.verdicts.map((v) => v.uid)).toEqual(uids);
    expect(independent.verdicts.map((v) => v.status)).toEqual(ourVerdicts.map((v) => v.status));
    expect(ourVerdicts.map((v) => v.status)).toEqual(uids.map((_, i) => (tampered.has(i) ? 'invalid' : 'authentic')));
    expect(ourVerdicts[2]!.reason).toMatch(/the anchor BEEF holds a transaction that hashes to/);
    expect(ourVerdicts[7]!.reason).toMatch(/the BUMP does not lead to the block header's merkle root/);
    expect(ourVerdicts[15]!.reason).toMatch(/the BUMP does not lead to the block header's merkle root/);
    expect(ourVerdicts[0]!.checked).toEqual([
      expect.stringMatching(
        /BEEF bytes hash to the txid, its BUMP leads to the merkle root of block [0-9a-f]{64} at height \d+, whose header has valid proof of work/,
      ),
      expect.stringMatching(/is the block at height \d+ in headers file /),
    ]);

    // Without headers: what could not be checked, and exit 5; with the chain service as the header source: authentic.
    const good = files.filter((_, i) => !tampered.has(i));
    const alone = await runEntry('ops/cli/patchproof.ts', ['verify-proof', good[0]!, '--keys', keysFile], env, 60_000);
    expect(alone.code).toBe(5);
    expect(alone.stdout).toMatch(/INCOMPLETE: every check made passed/);
    expect(alone.stdout).toMatch(/not checked: that block [0-9a-f]{64} is the chain's block at height \d+: no headers given/);
    const woc = await runEntry(
      'ops/cli/patchproof.ts',
      ['verify-proof', ...good.slice(0, 3), '--chain-tracker', 'woc', '--keys', keysFile],
      env,
      60_000,
    );
    expect(woc.code).toBe(0);
    expect(woc.stdout.match(/AUTHENTIC/g)).toHaveLength(3);
    expect(woc.stdout).toMatch(/is the block at height \d+ in the chain service/);
  }, 300_000);
});

/**
 * Public verification at consumer scale on the real stack (Temporal dev server, FerretDB, Redis, dev KMS, chain
 * simulator): N patches registered in one bulk batch, anchored, and proven by the chain follower, which the worker
 * (its own process, workers/main.ts) starts at boot. Then GET /v1/patches/{uid}/verify, cycling over the uids,
 * is loaded with autocannon beside GET /health (the floor: the same API process, no database) in the same run.
 * The API and the worker run the built code (`npm run build`) as their own processes, so the load generator does not
 * share their event loop. The API keeps settled verdicts (api/verdictCache.ts) and has verified every patch once
 * before the measurement; a second API process with the verdict cache off (VERIFY_CACHE_SECONDS=0) shows what every
 * request reading MongoDB costs. Prints req/s, p50 and p99 of each, their ratio to the floor, and the chain-service
 * requests verification made (the API's
 * patchproof_chain_requests_total{caller="verify"}), which should stay 0.
 * Targets: ≥ 500 req/s, p99 < 10 ms, ≥ 50 % of the floor's throughput, 0 chain requests.
 * Run: npm run build && npx tsx test/bench/verify.ts [patches=1000] [--seconds 15] [--connections 16]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PublicKey } from '@bsv/sdk';
import { createApp } from '../../api/app';
import { anchorTxModel } from '../../src/chainFollower/models';
import { patchModel } from '../../src/registration/models';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { listen } from '../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../support/patchApi';
import { REPO_ROOT } from '../support/processes';
import {
  load,
  metricSum,
  metricsText,
  printLoads,
  startBuiltApi,
  trackBuilt,
  requireBuiltCode,
  type BuiltProcess,
  type LoadResult,
} from '../support/bench';
import { waitFor } from '../support/workerProcesses';
import { startMainWorkerProcess, startPoolStack, type PoolStack } from '../support/poolStack';
import { testEnvironment } from '../support/stack';

/** Registers `size` patches in one bulk batch (the fast path) and waits until every record is anchored. */
async function registerBatch(stack: PoolStack, baseUrl: string, size: number): Promise<string[]> {
  const client = apiClient(baseUrl, stack.deps.config.auth.apiKey);
  const owner = PublicKey.fromString(stack.kms.keys.ensure('owner-bench').pubKeyHex).toAddress('testnet');
  const uids = Array.from({ length: size }, (_, i) => `VERIFY-${String(i).padStart(5, '0')}`);
  const answer = await client.call('POST', '/v1/patch-batches', JSON.stringify(uids.map((uid) => registrationBody(uid, owner))), {
    'content-type': 'application/json',
    'x-api-key': stack.deps.config.auth.apiKey,
    'idempotency-key': 'verify-bench',
  });
  if (answer.status !== 202) throw new Error(`batch: ${answer.status} ${JSON.stringify(answer.body)}`);
  await waitFor(
    'the batch to complete',
    async () => {
      const view = (await client.adminGet(String(answer.body.statusUrl))).body as { state: string };
      if (view.state === 'failed') throw new Error('batch failed');
      return view.state === 'completed' ? true : undefined;
    },
    300_000,
  );
  return uids;
}

async function verifyChainRequests(apiUrl: string, apiKey: string): Promise<number> {
  return metricSum(await metricsText(apiUrl, apiKey), 'patchproof_chain_requests_total', { caller: 'verify' });
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { seconds: { type: 'string', default: '15' }, connections: { type: 'string', default: '16' } },
  });
  const size = Number(positionals[0] ?? 1000);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  requireBuiltCode();
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const stack = await startPoolStack(
    { ANCHOR_CONFIRMATIONS: '1', LOG_LEVEL: 'warn', CHAIN_FOLLOWER_POLL_SECONDS: '1' },
    { blockIntervalMs: 1000, inProcessWorker: false },
  );
  const worker = trackBuilt(
    await startMainWorkerProcess(
      stack,
      { CHAIN_FOLLOWER_POLL_SECONDS: '1', WORKFLOW_BUNDLE_PATH: path.join(REPO_ROOT, 'dist', 'workflow-bundle.js') },
      'dist/workers/main.js',
    ),
  );
  let apiProcess: BuiltProcess | undefined;
  let uncachedProcess: BuiltProcess | undefined;
  const rows: LoadResult[] = [];
  let chainRequests = NaN;
  try {
    const apiEnv = testEnvironment({
      ...stack.env,
      MONGODB_URI: stack.deps.config.mongo.uri,
      REDIS_URL: stack.deps.config.redis.url,
      LOG_LEVEL: 'warn',
      ACCESS_LOG: 'false',
      PUBLIC_API_MAX: '100000000',
    });
    apiProcess = await startBuiltApi({ ...apiEnv, VERIFY_CACHE_SECONDS: '300' });
    uncachedProcess = await startBuiltApi({ ...apiEnv, VERIFY_CACHE_SECONDS: '0' });
    const apiUrl = apiProcess.url;
    const uncachedUrl = uncachedProcess.url;
    const setupApi = await listen(createApp(stack.deps));
    await fundAndSyncPool(stack, 4, 100_000);
    const registeredAt = performance.now();
    const uids = await registerBatch(stack, setupApi.baseUrl, size);
    const anchoredMs = performance.now() - registeredAt;
    const txids = [
      ...new Set((await Promise.all(uids.map((uid) => patchModel(stack.deps.mongo).findById(uid).lean()))).map((p) => p!.anchor!.txid)),
    ];
    await waitFor(
      'the follower to prove every anchor tx',
      async () => {
        const docs = await Promise.all(txids.map((txid) => anchorTxModel(stack.deps.mongo).findById(txid).lean()));
        return docs.every((d) => d?.state === 'proven') ? true : undefined;
      },
      120_000,
      { intervalMs: 250 },
    );
    const provenMs = performance.now() - registeredAt;
    await setupApi.close();
    process.stdout.write(
      `${size} patches in ${txids.length} anchor tx(s): anchored after ${(anchoredMs / 1000).toFixed(1)} s, proven by the follower after ${(provenMs / 1000).toFixed(1)} s\n`,
    );
    const verifyPaths = uids.map((uid) => `/v1/patches/${uid}/verify`);
    // Warm-up: connections, JIT and the key directory's first KMS lookup; for the caching API one pass over every
    // uid, so what is measured is the steady state of a deployment that has verified each patch once.
    await load('warm-up', { url: apiUrl, paths: verifyPaths, seconds: 3, connections, amount: verifyPaths.length });
    await load('warm-up', { url: uncachedUrl, paths: verifyPaths, seconds: 3, connections });
    const apiKey = stack.deps.config.auth.apiKey;
    const requestsSoFar = async () => (await verifyChainRequests(apiUrl, apiKey)) + (await verifyChainRequests(uncachedUrl, apiKey));
    const before = await requestsSoFar();
    rows.push(await load('GET /health', { url: apiUrl, paths: ['/health'], seconds, connections }));
    rows.push(await load('GET verify', { url: apiUrl, paths: verifyPaths, seconds, connections }));
    rows.push(await load('verify, no cache', { url: uncachedUrl, paths: verifyPaths, seconds, connections }));
    chainRequests = (await requestsSoFar()) - before;
    const sample = (await (await fetch(`${apiUrl}${verifyPaths[0]}`)).json()) as { status: string; chain?: unknown };
    if (sample.status !== 'authentic') throw new Error(`verify answered ${JSON.stringify(sample)}`);
  } finally {
    await Promise.all([apiProcess?.stop(), uncachedProcess?.stop(), worker.stop()]);
    await stack.close();
    await globalTeardown();
  }
  process.stdout.write(`\n${connections} connections, ${seconds} s each\n`);
  printLoads(rows, (line) => process.stdout.write(`${line}\n`));
  const [floor, verify, uncached] = rows;
  const share = (r: LoadResult) => `${((r.reqPerSec / floor!.reqPerSec) * 100).toFixed(0)} %`;
  process.stdout.write(
    `\nthroughput against /health: verify ${share(verify!)}, verify without the cache ${share(uncached!)}; chain-service requests by verification: ${chainRequests}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

/**
 * Public verification at consumer scale on the real stack (Temporal dev server, FerretDB, Redis, dev KMS, chain
 * simulator): N patches registered in one bulk batch, anchored, and proven by the chain follower, which the worker
 * (its own process, workers/main.ts) starts at boot. Then GET /v1/patches/{uid}/verify, cycling over the uids,
 * is loaded with autocannon beside GET /health (the floor: the same API process, no database) in the same run.
 * The API runs as its own process, so the load generator does not share its event loop; it keeps settled
 * verdicts (api/verdictCache.ts) and has verified every patch once before the measurement. A second API process
 * with the verdict cache off (VERIFY_CACHE_SECONDS=0) shows what every request reading MongoDB costs. Prints req/s,
 * p50 and p99 of each, their ratio to the floor, and the chain-service requests verification made (the API's
 * patchproof_chain_requests_total{caller="verify"}), which should stay 0.
 * Targets: ≥ 500 req/s, p99 < 10 ms, ≥ 50 % of the floor's throughput, 0 chain requests.
 * Run: npx tsx test/bench/verify.ts [patches=1000] [--seconds 15] [--connections 16]
 */
import { parseArgs } from 'node:util';
import { PublicKey } from '@bsv/sdk';
import autocannon from 'autocannon';
import { createApp } from '../../api/app';
import { anchorTxModel } from '../../src/chainFollower/models';
import { patchModel } from '../../src/registration/models';
import { freePort } from '../../ops/dev-stack/services';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { listen } from '../support/http';
import { apiClient, fundAndSyncPool, registrationBody } from '../support/patchApi';
import { spawnEntry } from '../support/processes';
import { startMainWorkerProcess, startPoolStack, type PoolStack } from '../support/poolStack';
import { testEnvironment } from '../support/stack';
import { waitFor } from '../support/workerProcesses';

interface Load {
  name: string;
  requests: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/** Registers `size` patches in one bulk batch (the fast path) and waits until every record is anchored. */
async function registerBatch(stack: PoolStack, baseUrl: string, size: number): Promise<string[]> {
  const client = apiClient(baseUrl, stack.deps.config.auth.apiKey);
  const owner = PublicKey.fromString(stack.kms.keys.describe('owner-bench').pubKeyHex).toAddress('testnet');
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
    { intervalMs: 250 },
  );
  return uids;
}

async function load(name: string, url: string, paths: string[], seconds: number, connections: number, amount?: number): Promise<Load> {
  let next = 0;
  const result = await autocannon({
    url,
    connections,
    ...(amount ? { amount } : { duration: seconds }),
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[next++ % paths.length]! }) }],
  });
  return {
    name,
    requests: result.requests.total,
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

async function verifyChainRequests(apiUrl: string, apiKey: string): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`, { headers: { 'x-api-key': apiKey } })).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('patchproof_chain_requests_total{') && line.includes('caller="verify"'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { seconds: { type: 'string', default: '15' }, connections: { type: 'string', default: '16' } },
  });
  const size = Number(positionals[0] ?? 1000);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const stack = await startPoolStack(
    { ANCHOR_CONFIRMATIONS: '1', LOG_LEVEL: 'warn', CHAIN_FOLLOWER_POLL_SECONDS: '1' },
    { blockIntervalMs: 1000, inProcessWorker: false },
  );
  const worker = await startMainWorkerProcess(stack, { CHAIN_FOLLOWER_POLL_SECONDS: '1' });
  const apiPort = await freePort();
  const apiEnv = testEnvironment({
    ...stack.env,
    MONGODB_URI: stack.deps.config.mongo.uri,
    REDIS_URL: stack.deps.config.redis.url,
    PORT: String(apiPort),
    LOG_LEVEL: 'warn',
    ACCESS_LOG: 'false',
    VERIFY_CACHE_SECONDS: '300',
    PUBLIC_API_MAX: '100000000',
  });
  const apiProcess = spawnEntry('api/server.ts', [], apiEnv);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const uncachedPort = await freePort();
  const uncachedProcess = spawnEntry('api/server.ts', [], { ...apiEnv, PORT: String(uncachedPort), VERIFY_CACHE_SECONDS: '0' });
  const uncachedUrl = `http://127.0.0.1:${uncachedPort}`;
  const rows: Load[] = [];
  let chainRequests = NaN;
  try {
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
    for (const url of [apiUrl, uncachedUrl]) {
      await waitFor('the API process', async () => ((await fetch(`${url}/health`).catch(() => undefined))?.ok ? true : undefined), 60_000);
    }
    const verifyPaths = uids.map((uid) => `/v1/patches/${uid}/verify`);
    // Warm-up: connections, JIT and the key directory's first KMS lookup; for the caching API one pass over every
    // uid, so what is measured is the steady state of a deployment that has verified each patch once.
    await load('warm-up', apiUrl, verifyPaths, 3, connections, verifyPaths.length);
    await load('warm-up', uncachedUrl, verifyPaths, 3, connections);
    const apiKey = stack.deps.config.auth.apiKey;
    const before = (await verifyChainRequests(apiUrl, apiKey)) + (await verifyChainRequests(uncachedUrl, apiKey));
    rows.push(await load('GET /health', apiUrl, ['/health'], seconds, connections));
    rows.push(await load('GET verify', apiUrl, verifyPaths, seconds, connections));
    rows.push(await load('verify, no cache', uncachedUrl, verifyPaths, seconds, connections));
    chainRequests = (await verifyChainRequests(apiUrl, apiKey)) + (await verifyChainRequests(uncachedUrl, apiKey)) - before;
    const sample = (await (await fetch(`${apiUrl}${verifyPaths[0]}`)).json()) as { status: string; chain?: unknown };
    if (sample.status !== 'authentic') throw new Error(`verify answered ${JSON.stringify(sample)}`);
  } finally {
    apiProcess.kill('SIGTERM');
    uncachedProcess.kill('SIGTERM');
    worker.kill('SIGTERM');
    await Promise.all(
      [apiProcess, uncachedProcess, worker].map(
        (p) => new Promise((resolve) => (p.exitCode !== null ? resolve(null) : p.once('exit', resolve))),
      ),
    );
    await stack.close();
    await globalTeardown();
  }
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  process.stdout.write(`\n${connections} connections, ${seconds} s each\n`);
  process.stdout.write(
    `${'route'.padEnd(18)}${pad('requests', 10)}${pad('req/s', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('non-2xx', 9)}${pad('errors', 8)}\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${r.name.padEnd(18)}${pad(r.requests, 10)}${pad(r.reqPerSec.toFixed(0), 9)}${pad(r.p50, 8)}${pad(r.p99, 8)}${pad(r.non2xx, 9)}${pad(r.errors, 8)}\n`,
    );
  }
  const [floor, verify, uncached] = rows;
  const share = (r: Load) => `${((r.reqPerSec / floor!.reqPerSec) * 100).toFixed(0)} %`;
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

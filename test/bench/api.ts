/**
 * The API's latency budget on the real stack, built code only (`node dist/api/server.js` and
 * `node dist/workers/main.js` with dist/workflow-bundle.js, each its own process; the load generator is this one):
 * - GET /health, the hello floor: the same API process, no dependency;
 * - POST /v1/patches at a fixed 100 req/s, each a distinct uid, workflow start included;
 * - GET /v1/registrations/registration-{uid} and GET /v1/patches/{uid}/verify over uids registered just before (the
 *   reads of one patch by uid, made while the worker anchors them);
 * - GET /ready (MongoDB, Redis and Temporal probes).
 * Prints each load's req/s, p50 and p99, the reads' throughput as a share of the floor, and the RSS of the API and
 * the worker; with --soak-minutes N it keeps the mixed load up for N minutes and prints RSS each minute.
 * Targets: POST p99 < 50 ms at 100 req/s; reads ≥ 50 % of the floor; RSS after 5 minutes: worker < 300 MB,
 * API < 150 MB, and no growth over 10 minutes.
 * Run: npm run build && npx tsx test/bench/api.ts [--seconds 15] [--connections 16] [--soak-minutes 0]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PublicKey } from '@bsv/sdk';
import { load, printLoads, requireBuiltCode, rssMb, startBuiltApi, type BuiltProcess, type LoadResult } from '../support/bench';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { registrationBody, fundAndSyncPool } from '../support/patchApi';
import { REPO_ROOT } from '../support/processes';
import { startMainWorkerProcess, startPoolStack } from '../support/poolStack';
import { testEnvironment } from '../support/stack';

const say = (line: string) => process.stdout.write(`${line}\n`);
const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '15' },
      connections: { type: 'string', default: '16' },
      'soak-minutes': { type: 'string', default: '0' },
    },
  });
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const soakMinutes = Number(values['soak-minutes']);
  requireBuiltCode();
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  const bundle = path.join(REPO_ROOT, 'dist', 'workflow-bundle.js');
  const stack = await startPoolStack(
    { ANCHOR_CONFIRMATIONS: '1', LOG_LEVEL: 'warn', CHAIN_FOLLOWER_POLL_SECONDS: '1' },
    { blockIntervalMs: 1000, inProcessWorker: false },
  );
  const worker = await startMainWorkerProcess(
    stack,
    { CHAIN_FOLLOWER_POLL_SECONDS: '1', WORKFLOW_BUNDLE_PATH: bundle, LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    'dist/workers/main.js',
  );
  let api: BuiltProcess | undefined;
  const apiKey = stack.deps.config.auth.apiKey;
  try {
    api = await startBuiltApi(
      testEnvironment({
        ...stack.env,
        MONGODB_URI: stack.deps.config.mongo.uri,
        REDIS_URL: stack.deps.config.redis.url,
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
        ACCESS_LOG: 'true',
        PUBLIC_API_MAX: '100000000',
        ADMIN_API_MAX: '100000000',
        API_KEY_RATE_MAX: '100000000',
      }),
    );
    progress('API and worker up; funding the pool');
    await fundAndSyncPool(stack, 20, 100_000);
    const owner = PublicKey.fromString(stack.kms.keys.ensure('owner-bench').pubKeyHex).toAddress('testnet');
    const uids: string[] = [];
    const registrations = (name: string, run: string, secs: number) =>
      load(name, {
        url: api!.url,
        seconds: secs,
        connections: 10,
        rate: 100,
        next: () => {
          const uid = `API-${run}-${String(uids.length).padStart(6, '0')}`;
          uids.push(uid);
          return {
            method: 'POST',
            path: '/v1/patches',
            headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
            body: JSON.stringify(registrationBody(uid, owner)),
          };
        },
      });
    const reads = async (paths: { registration: string[]; verify: string[] }) => [
      await load('GET /health', { url: api!.url, paths: ['/health'], seconds, connections }),
      await load('GET registration', { url: api!.url, paths: paths.registration, headers: { 'x-api-key': apiKey }, seconds, connections }),
      await load('GET verify', { url: api!.url, paths: paths.verify, seconds, connections }),
      await load('GET /ready', { url: api!.url, paths: ['/ready'], seconds, connections }),
    ];
    const pathsOf = (list: string[]) => ({
      registration: list.map((uid) => `/v1/registrations/registration-${uid}`),
      verify: list.map((uid) => `/v1/patches/${uid}/verify`),
    });

    // The read set: registered first, so the reads measure one patch by uid while the worker anchors them.
    await registrations('warm-up', 'warm', 3);
    const readSet = pathsOf(uids.filter((uid) => uid.startsWith('API-warm-')));
    progress('loading the read routes');
    await load('warm-up', { url: api.url, paths: readSet.verify.slice(0, 50), seconds: 2, connections });
    const readRows = await reads(readSet);
    progress('registering at 100 req/s');
    const post = await registrations('POST /v1/patches', 'main', seconds);
    const rows: LoadResult[] = [post, ...readRows];
    const rss = { api: api.rssMb(), worker: rssMb(worker.pid) };

    const soak: { minute: number; api: number; worker: number; postP99: number }[] = [];
    const soakEnds = Date.now() + soakMinutes * 60_000;
    for (let minute = 1; Date.now() < soakEnds; minute++) {
      const round = await registrations('soak POST', `soak${minute}`, 30);
      await reads(readSet);
      soak.push({ minute, api: api.rssMb(), worker: rssMb(worker.pid), postP99: round.p99 });
    }

    say(`\nbuilt code; POST at a fixed 100 req/s over 10 connections; reads at ${connections} connections, ${seconds} s each`);
    printLoads(rows, say);
    const floor = rows.find((r) => r.name === 'GET /health')!;
    for (const r of rows.filter((row) => row.name.startsWith('GET ') && row !== floor)) {
      say(`${r.name} / GET /health throughput: ${((r.reqPerSec / floor.reqPerSec) * 100).toFixed(0)} %`);
    }
    say(`POST /v1/patches p99 ${post.p99} ms at ${post.reqPerSec.toFixed(0)} req/s (${post.non2xx} non-2xx)`);
    say(`RSS after the load: API ${rss.api.toFixed(0)} MB, worker ${rss.worker.toFixed(0)} MB`);
    if (soak.length > 0) {
      say('\nsoak: RSS after each minute of mixed load (30 s of POST at 100 req/s, then the reads)');
      for (const s of soak) {
        say(
          `  minute ${String(s.minute).padStart(3)}  API ${s.api.toFixed(0).padStart(4)} MB  worker ${s.worker.toFixed(0).padStart(4)} MB  POST p99 ${s.postP99} ms`,
        );
      }
    }
  } finally {
    await api?.stop();
    worker.kill('SIGTERM');
    await new Promise((resolve) => (worker.exitCode !== null ? resolve(null) : worker.once('exit', resolve)));
    await stack.close();
    await globalTeardown();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

/**
 * SVD login benchmark against the built API (`node dist/api/server.js`, its own process, production logging: JSON at
 * info with the access log): full logins (begin + sign + complete over HTTP, with Redis and MongoDB) per second and
 * their p50/p99 at `concurrency` clients, beside two floors measured in the same run: GET /health on the same API
 * process at the same concurrency, and one raw secp256k1 verify (libsecp256k1, which the login uses, and @bsv/sdk's
 * JavaScript, which it used before). Then where the server's time per login goes, from the API's own
 * patchproof_request_step_duration_seconds (SVD steps and rate-limiter store calls) and its HTTP duration histogram.
 * Targets: ≥ 500 logins/s and p99 < 20 ms at 8 clients on an idle 2-core machine; on a shared one, read the ratios.
 * Run: npm run build && npx tsx test/bench/svd-login.ts [logins=3000] [concurrency=8]
 */
import { createHash, randomBytes } from 'node:crypto';
import { BigNumber, ECDSA, PrivateKey, type Signature } from '@bsv/sdk';
import { Types } from 'mongoose';
import { signDigest, verifyDigestSignature } from '../../src/chain/ecdsa';
import { SvdClient } from '../../src/sdk/svdClient';
import { labelValues, load, metricSum, metricsText, printLoads, requireBuiltCode, runBench, startBuiltApi } from '../support/bench';
import globalSetup from '../support/globalSetup';
import '../support/quietRuntime';
import globalTeardown from '../support/globalTeardown';
import { ownerAuthTestEnv, testEnvironment } from '../support/stack';

const logins = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 8);
const say = (line: string) => process.stdout.write(`${line}\n`);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Median per-call time of `fn` over `rounds` calls, in milliseconds. */
function timePerCall(rounds: number, fn: () => void): number {
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    fn();
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
}

async function runLogins(client: SvdClient, owners: { userId: string; privHex: string }[], count: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const owner = owners[next++ % owners.length]!;
        const t0 = performance.now();
        await client.login(owner.userId, owner.privHex);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}

function rawVerifyFloors(): { sdkMs: number; libsecpMs: number } {
  const priv = Buffer.from(PrivateKey.fromRandom().toArray('be', 32));
  const digest = createHash('sha256').update(randomBytes(24)).digest();
  const signature: Signature = signDigest(digest, priv);
  const pub = PrivateKey.fromString(priv.toString('hex'), 'hex').toPublicKey();
  const sdkMs = timePerCall(200, () => {
    if (!ECDSA.verify(new BigNumber(digest.toString('hex'), 16), signature, pub)) throw new Error('verify failed');
  });
  const libsecpMs = timePerCall(2000, () => {
    if (!verifyDigestSignature(digest, signature, pub)) throw new Error('verify failed');
  });
  return { sdkMs, libsecpMs };
}

/** Per-step server time between two metric snapshots, per login. */
function breakdown(before: string, after: string, count: number): void {
  const STEP = 'patchproof_request_step_duration_seconds';
  const HTTP = 'patchproof_http_request_duration_seconds';
  const delta = (name: string, labels: Record<string, string>) => metricSum(after, name, labels) - metricSum(before, name, labels);
  const serverMs =
    ((delta(`${HTTP}_sum`, { route: '/api/svd/begin' }) + delta(`${HTTP}_sum`, { route: '/api/svd/complete' })) * 1000) / count;
  const rows = labelValues(after, `${STEP}_count`, 'step')
    .map((step) => {
      const calls = delta(`${STEP}_count`, { step });
      const ms = delta(`${STEP}_sum`, { step }) * 1000;
      return { step, perLogin: calls / count, perCall: calls ? ms / calls : 0, msPerLogin: ms / count };
    })
    .filter((r) => r.perLogin > 0)
    .sort((a, b) => b.msPerLogin - a.msPerLogin);
  const accounted = rows.reduce((sum, r) => sum + r.msPerLogin, 0);
  say(`\nwhere the API's time per login goes (begin + complete: ${serverMs.toFixed(2)} ms from request to response)`);
  say(`${'step'.padEnd(26)}${'calls/login'.padStart(12)}${'ms/call'.padStart(10)}${'ms/login'.padStart(10)}${'share'.padStart(8)}`);
  const line = (step: string, perLogin: string, perCall: string, msPerLogin: number) =>
    say(
      `${step.padEnd(26)}${perLogin.padStart(12)}${perCall.padStart(10)}${msPerLogin.toFixed(3).padStart(10)}${`${((msPerLogin / serverMs) * 100).toFixed(0)} %`.padStart(8)}`,
    );
  for (const r of rows) line(r.step, r.perLogin.toFixed(1), r.perCall.toFixed(3), r.msPerLogin);
  line('rest (HTTP, JSON, express)', '', '', Math.max(0, serverMs - accounted));
  say('Redis and MongoDB steps are round trips measured from the API, so they include waiting for the event loop.');
}

async function main(): Promise<void> {
  requireBuiltCode();
  process.env.JEST_WORKER_ID ??= '1';
  await globalSetup();
  let api: Awaited<ReturnType<typeof startBuiltApi>> | undefined;
  try {
    const env = testEnvironment({
      ...ownerAuthTestEnv(),
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      ACCESS_LOG: 'true',
      SVD_RATE_MAX_PER_IP: '100000000',
      SVD_RATE_MAX_PER_USER: '100000000',
      PUBLIC_API_MAX: '100000000',
    });
    api = await startBuiltApi(env);
    const client = new SvdClient({ baseUrl: api.url });
    // A pool of owners, so logins spread over users as they would in production.
    const owners = await Promise.all(
      Array.from({ length: 32 }, async () => {
        const priv = PrivateKey.fromRandom();
        const userId = new Types.ObjectId().toHexString();
        const res = await fetch(`${api!.url}/api/svd/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': env.API_KEY! },
          body: JSON.stringify({ userId, pmcHex: priv.toPublicKey().toString() }),
        });
        if (res.status !== 201) throw new Error(`register answered ${res.status}: ${await res.text()}`);
        return { userId, privHex: priv.toHex() };
      }),
    );
    await runLogins(client, owners, 200); // warm-up: connections, JIT, the registry's first reads

    const floor = await load('GET /health', { url: api.url, paths: ['/health'], seconds: 10, connections: concurrency });
    const before = await metricsText(api.url, env.API_KEY!);
    const apiCpuBefore = api.cpuMs();
    const clientCpuBefore = process.cpuUsage();
    const started = performance.now();
    const latencies = await runLogins(client, owners, logins);
    const elapsedSec = (performance.now() - started) / 1000;
    const apiCpuPerLogin = (api.cpuMs() - apiCpuBefore) / logins;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const clientCpuPerLogin = (clientCpu.user + clientCpu.system) / 1000 / logins;
    const after = await metricsText(api.url, env.API_KEY!);
    const { sdkMs, libsecpMs } = rawVerifyFloors();

    const throughput = logins / elapsedSec;
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    say(`SVD logins against the built API: ${logins} logins at concurrency ${concurrency}, API RSS ${api.rssMb().toFixed(0)} MB`);
    say(`  throughput          ${throughput.toFixed(1)} logins/s (${(throughput * 2).toFixed(0)} HTTP requests/s)`);
    say(`  latency p50 / p99   ${p50.toFixed(2)} / ${p99.toFixed(2)} ms (client side: begin, sign, complete)`);
    say(`  floor: GET /health  ${floor.reqPerSec.toFixed(0)} req/s, p50 ${floor.p50} ms, p99 ${floor.p99} ms (same API, same concurrency)`);
    say(`  login requests / floor requests   ${(((throughput * 2) / floor.reqPerSec) * 100).toFixed(0)} %`);
    say(
      `  raw verify          libsecp256k1 ${libsecpMs.toFixed(3)} ms, @bsv/sdk ${sdkMs.toFixed(3)} ms (${(sdkMs / libsecpMs).toFixed(1)}x)`,
    );
    say(`  p50 / raw verify    ${(p50 / libsecpMs).toFixed(1)}x (libsecp256k1)`);
    // A Node process runs its JavaScript on one core: the API's CPU per login bounds one process's logins/s.
    say(
      `  CPU per login       API ${apiCpuPerLogin.toFixed(2)} ms (one API process tops out near ${(1000 / apiCpuPerLogin).toFixed(0)} logins/s), bench client ${clientCpuPerLogin.toFixed(2)} ms`,
    );
    printLoads([floor], say);
    breakdown(before, after, logins);
  } catch (err) {
    process.stderr.write(`the API's last output:\n${api?.lastOutput() ?? '(not started)'}\n`);
    throw err;
  } finally {
    await api?.stop();
    await globalTeardown();
  }
}

runBench(main);

/**
 * SVD login benchmark: full logins (begin + sign + complete over HTTP, with Redis and MongoDB) per second and their
 * p99 latency, beside the cost of one raw secp256k1 verify measured in the same run, so the overhead ratio shows.
 * Starts its own Redis and MongoDB-wire database on free ports; Temporal is not involved in SVD.
 * Run: npx tsx test/bench/svd-login.ts [logins=300] [concurrency=8]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BigNumber, ECDSA, PrivateKey } from '@bsv/sdk';
import { Client, Connection } from '@temporalio/client';
import { Types } from 'mongoose';
import { createApp } from '../../api/app';
import { provision } from '../../ops/dev-stack/provision';
import { describeMongo, freePorts, startMongoWire, startRedis, type RunningService } from '../../ops/dev-stack/services';
import { loadConfig } from '../../src/config';
import { ensureIndexes } from '../../src/db/indexes';
import { registerModels } from '../../src/db/models';
import { connectMongo } from '../../src/db/mongo';
import { createLogger } from '../../src/logging/logger';
import { createMetrics } from '../../src/metrics';
import { connectRedis } from '../../src/redis/client';
import { SvdClient } from '../../src/sdk/svdClient';
import { listen } from '../support/http';

const logins = Number(process.argv[2] ?? 300);
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

async function main(): Promise<void> {
  const tools = await provision({ purpose: 'dev', say: () => undefined });
  if (!tools.redisServer || tools.mongo.kind === 'external')
    throw new Error('the benchmark needs redis-server and a local MongoDB-wire database');
  const scratch = mkdtempSync(path.join(tmpdir(), 'bench-svd-'));
  const [redisPort, mongoPort] = (await freePorts(2)) as [number, number];
  const services: RunningService[] = [];
  services.push(await startRedis({ bin: tools.redisServer, port: redisPort, logFile: path.join(scratch, 'redis.log') }));
  services.push(
    await startMongoWire({
      mongo: tools.mongo,
      port: mongoPort,
      dataDir: path.join(scratch, 'db'),
      logFile: path.join(scratch, 'db.log'),
    }),
  );

  const config = loadConfig({
    NODE_ENV: 'development',
    MONGODB_URI: `mongodb://127.0.0.1:${mongoPort}/bench`,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    ACCESS_LOG: 'false',
    SVD_RATE_MAX_PER_IP: '1000000',
    SVD_RATE_MAX_PER_USER: '1000000',
    PUBLIC_API_MAX: '1000000',
    ADMIN_API_MAX: '1000000',
  });
  const logger = createLogger({ service: 'bench', deploySha: 'bench', level: 'error', format: 'json' });
  const redis = await connectRedis(config.redis, { connectionName: 'bench' });
  const mongo = await connectMongo(config.mongo);
  registerModels(mongo);
  await ensureIndexes(mongo);
  // SVD never calls Temporal; a lazy connection to nowhere keeps the app's shape.
  const temporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:9' }), namespace: 'default' });
  const server = await listen(
    createApp({ config, logger, metrics: createMetrics({ service: 'bench', deploySha: 'bench' }), mongo, redis, temporal }),
  );
  const client = new SvdClient({ baseUrl: server.baseUrl });

  try {
    // A pool of owners, so logins spread over users as they would in production.
    const owners = await Promise.all(
      Array.from({ length: 32 }, async () => {
        const priv = PrivateKey.fromRandom();
        const userId = new Types.ObjectId().toHexString();
        const res = await fetch(`${server.baseUrl}/api/svd/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': config.auth.apiKey },
          body: JSON.stringify({ userId, pmcHex: priv.toPublicKey().toString() }),
        });
        if (res.status !== 201) throw new Error(`register answered ${res.status}`);
        return { userId, privHex: priv.toHex() };
      }),
    );
    for (const owner of owners.slice(0, 4)) await client.login(owner.userId, owner.privHex); // warm-up

    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < logins) {
          const owner = owners[next++ % owners.length]!;
          const t0 = performance.now();
          await client.login(owner.userId, owner.privHex);
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const elapsedSec = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);

    // The floor: one raw secp256k1 verify of a 32-byte digest, same library, same process, same run.
    const priv = PrivateKey.fromRandom();
    const digest = new BigNumber(Buffer.from('ab'.repeat(32), 'hex').toString('hex'), 16);
    const signature = ECDSA.sign(digest, priv, true);
    const pub = priv.toPublicKey();
    const verifyMs = timePerCall(200, () => {
      if (!ECDSA.verify(digest, signature, pub)) throw new Error('verify failed');
    });

    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    say(
      `SVD logins (begin + sign + complete over HTTP, Redis + ${describeMongo(tools.mongo)}), ${logins} logins, concurrency ${concurrency}`,
    );
    say(`  throughput        ${(logins / elapsedSec).toFixed(1)} logins/s`);
    say(`  latency p50       ${p50.toFixed(2)} ms`);
    say(`  latency p99       ${p99.toFixed(2)} ms`);
    say(`  raw verify        ${verifyMs.toFixed(3)} ms (one secp256k1 ECDSA verify, @bsv/sdk)`);
    say(`  p50 / raw verify  ${(p50 / verifyMs).toFixed(1)}x`);
    say(`  p99 / raw verify  ${(p99 / verifyMs).toFixed(1)}x`);
  } finally {
    await server.close();
    redis.disconnect();
    await mongo.close();
    await temporal.connection.close().catch(() => undefined);
    for (const service of services.reverse()) await service.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PublicKey } from '@bsv/sdk';
import type { Worker } from '@temporalio/worker';
import { ANCHOR_BATCHER_WORKFLOW_ID } from '../../src/anchoring/ids';
import express from 'express';
import { createDevKms, type DevKms } from '../../ops/stand-ins/dev-kms/server';
import { configuredKeyNames } from '../../ops/stand-ins/dev-kms/keyStore';
import { loadConfig } from '../../src/config';
import type { Logger } from '../../src/logging/logger';
import { resolvePoolAccounts } from '../../src/pool/accounts';
import { chainClientsFromConfig } from '../../src/chain/clients';
import type { PoolAccounts } from '../../workflows/pool/shared';
import { startSimulator, type RunningSimulator } from './chainSimulator';
import { listen, type Listening } from './http';
import { freePort } from '../../ops/dev-stack/services';
import { spawnTracked, type TrackedProcess } from './processes';
import { connectTestDeps, createTestWorker, testEnvironment, type TestDeps } from './stack';
import { testEnv } from './testEnv';
import { untilPolling } from './workerProcesses';

export const POOL_TEST_KMS_KEY = 'pool-test-kms-api-key';

/**
 * The pool's real surroundings for a test file: the dev KMS and the chain simulator on real sockets, the test
 * services, and the main worker running the production workflows and activities.
 */
export interface PoolStack {
  deps: TestDeps;
  kms: DevKms;
  simulator: RunningSimulator;
  accounts: PoolAccounts;
  worker: Worker;
  env: Record<string, string>;
  /** Pays the address from the simulator's faucet; confirmed outputs are mined at once. */
  fund(address: string, satoshis: number, confirmed?: boolean): Promise<{ txid: string; vout: number }>;
  signRequests(): number;
  /** Runs before the dev KMS answers the next /sign request: lets a test change the chain at that exact moment. */
  beforeNextSign(action: () => Promise<void>): void;
  close(): Promise<void>;
}

export async function startPoolStack(
  overrides: Record<string, string> = {},
  options: { blockIntervalMs?: number; inProcessWorker?: boolean; simulatorLogger?: Logger } = {},
): Promise<PoolStack> {
  const startedAt = new Date();
  // Only the keys this stack is configured with exist; a test creates any other key it needs, as an operator would.
  const kms = createDevKms({
    dataDir: mkdtempSync(path.join(tmpdir(), 'pool-kms-')),
    apiKey: POOL_TEST_KMS_KEY,
    keys: configuredKeyNames(loadConfig(testEnvironment(overrides))),
  });
  let pendingBeforeSign: (() => Promise<void>) | undefined;
  const kmsFront = express();
  kmsFront.use((req, _res, next) => {
    const action = req.method === 'POST' && req.path === '/sign' ? pendingBeforeSign : undefined;
    if (!action) return next();
    pendingBeforeSign = undefined;
    action().then(() => next(), next);
  });
  kmsFront.use(kms.app);
  const kmsServer: Listening = await listen(kmsFront);
  const simulator = await startSimulator({
    ...(options.blockIntervalMs && { blockIntervalMs: options.blockIntervalMs }),
    ...(options.simulatorLogger && { logger: options.simulatorLogger }),
  });
  // Addresses are configured the way production configures them, so dry runs need no KMS lookup.
  const fundingKey = kms.keys.describe(overrides.UTXO_FUNDING_KEY_IDENTIFIER ?? 'funding');
  const fundingAddress = PublicKey.fromString(fundingKey.pubKeyHex).toAddress('testnet');
  const env = {
    UTXO_FUNDING_ADDRESS: fundingAddress,
    KMS_SIGN_URL: kmsServer.baseUrl,
    KMS_API_KEY: POOL_TEST_KMS_KEY,
    WOC_BASE_URL: simulator.baseUrl,
    WOC_NETWORK: 'test',
    WOC_REQUESTS_PER_SECOND: '1000',
    UTXO_CONFIRMATION_POLL_SECONDS: '1',
    UTXO_HEALTH_CACHE_MS: '0',
    // Files in one jest worker share a Redis database, so the per-IP API limits would carry over between them.
    PUBLIC_API_MAX: '100000',
    ADMIN_API_MAX: '100000',
    ...overrides,
  };
  const deps = await connectTestDeps('worker', env);
  // The node's fee policy is the rate the system plans with, so a transaction that underpays by one satoshi is refused.
  simulator.simulator.policy.feeRateSatPerKb = deps.config.pool.defaults.feePerKb;
  const chain = chainClientsFromConfig(deps.config);
  const accounts = await resolvePoolAccounts(deps.config.pool, chain.kms, chain.network, true);
  // Crash tests run the worker as its own process instead (workers/main.ts), so they can SIGKILL it.
  const inProcess = options.inProcessWorker === false ? null : await createTestWorker(deps);
  const running = inProcess?.worker.run();
  return {
    deps,
    kms,
    simulator,
    accounts,
    worker: inProcess?.worker as Worker,
    env,
    async fund(address, satoshis, confirmed = true) {
      const res = await simulator.admin('POST', '/faucet', { address, satoshis, confirmed });
      if (res.status !== 200) throw new Error(`faucet: ${JSON.stringify(res.body)}`);
      return res.body as { txid: string; vout: number };
    },
    signRequests: () => kms.requests.filter((r) => r.path === '/sign').length,
    beforeNextSign(action) {
      pendingBeforeSign = action;
    },
    async close() {
      // Files in one jest worker share a namespace and a task queue: workflows left running here (the long-lived
      // anchor batcher, a batch still waiting for confirmations) would otherwise be picked up by the next file's
      // worker and act on its pool.
      const leftovers: string[] = [];
      for await (const execution of deps.temporal.workflow.list({ query: "ExecutionStatus = 'Running'" })) {
        if (execution.startTime >= startedAt || execution.workflowId === ANCHOR_BATCHER_WORKFLOW_ID) leftovers.push(execution.workflowId);
      }
      await Promise.all(
        leftovers.map((id) =>
          deps.temporal.workflow
            .getHandle(id)
            .terminate('test stack closed')
            .catch(() => undefined),
        ),
      );
      if (inProcess) {
        inProcess.worker.shutdown();
        await running?.catch(() => undefined);
        await inProcess.connection.close();
      }
      await simulator.stop();
      await kmsServer.close();
      await deps.close();
    },
  };
}

/**
 * The production worker entry point (workers/main.ts) as its own process against this stack, once it polls: what
 * crash tests SIGKILL, and what benches measure apart from the test process.
 */
export async function startMainWorkerProcess(
  stack: PoolStack,
  overrides: Record<string, string> = {},
  entry = 'workers/main.ts',
): Promise<ChildProcess> {
  return (await startMainWorkerTracked(stack, overrides, entry)).child;
}

/** startMainWorkerProcess, with the process's output kept for reports. */
export async function startMainWorkerTracked(
  stack: PoolStack,
  overrides: Record<string, string> = {},
  entry = 'workers/main.ts',
): Promise<TrackedProcess> {
  const env = testEnvironment({
    ...stack.env,
    MONGODB_URI: stack.deps.config.mongo.uri,
    REDIS_URL: stack.deps.config.redis.url,
    TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
    WORKER_METRICS_PORT: String(await freePort()),
    WORKFLOW_BUNDLE_PATH: testEnv('workflowBundle'),
    SYSTEM_CHECK_EVERY: 'off',
    LOG_LEVEL: 'warn',
    ...overrides,
  });
  const worker = spawnTracked(entry, env);
  const { temporal, config } = stack.deps;
  await untilPolling(temporal, config.temporal.namespace, worker);
  return worker;
}

/**
 * Holds the dev KMS's next sign request (after `skip` others pass) until released; `held` resolves once it is held.
 * Crash tests kill the worker while the request waits.
 */
export function holdSign(stack: PoolStack, skip: number): { held: Promise<void>; release: () => void } {
  let markHeld!: () => void;
  let release!: () => void;
  const held = new Promise<void>((r) => (markHeld = r));
  const gate = new Promise<void>((r) => (release = r));
  const arm = (remaining: number) =>
    stack.beforeNextSign(() => {
      if (remaining > 0) {
        arm(remaining - 1);
        return Promise.resolve();
      }
      markHeld();
      return gate;
    });
  arm(skip);
  return { held, release };
}

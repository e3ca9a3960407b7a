import { PrivateKey, PublicKey } from '@bsv/sdk';
import { bulkRegistrationWorkflowId } from '../../src/bulkRegistration/ids';
import { signOwnerMessage } from '../../src/sdk/ownerSigning';
import { startSweep, startSync, startTopUp, getPoolOperationStatus, waitForPoolOperation } from '../../src/pool/launch';
import { utxoModel } from '../../src/pool/models';
import { writePoolSetting } from '../../src/pool/settings';
import { registrationWorkflowId } from '../../src/registration/ids';
import { patchModel } from '../../src/registration/models';
import { transferModel } from '../../src/transfer/models';
import { kmsRotationWorkflowId } from '../../src/rotation/ids';
import { keyringFromConfig } from '../../src/rotation/keyring';
import { kmsRotationInput, startKmsRotation } from '../../src/rotation/launch';
import type { SweepReport, TopUpReport } from '../../workflows/pool/shared';
import type { KmsRotationReport } from '../../workflows/rotation/shared';
import type { MatrixStack, Scenario, StartedRun } from './crashMatrix';
import { fundAndSyncPool, loggedInOwner, newNonce, registrationBody, type TestOwner } from './patchApi';

/** The workflow kinds of the crash matrix: each starts one run the way its users do, and checks what it left. */

async function statusDone(env: MatrixStack, statusUrl: string, timeoutMs: number) {
  return env.api.waitDone(statusUrl, timeoutMs);
}

/** Problems with one anchored record: its txid on the chain, its document once, verification authentic. */
async function anchoredOnce(env: MatrixStack, uid: string, txid: string | undefined): Promise<string[]> {
  const problems: string[] = [];
  const { mongo } = env.stack.deps;
  const copies = await patchModel(mongo).countDocuments({ _id: uid });
  if (copies !== 1) problems.push(`${copies} patch documents for ${uid}`);
  if (!txid) return [...problems, `${uid} has no anchor txid`];
  if ((await fetch(`${env.stack.simulator.baseUrl}/v1/bsv/test/tx/${txid}/hex`)).status !== 200)
    problems.push(`${txid} unknown to the node`);
  const verdict = (await env.api.get(`/v1/patches/${uid}/verify`)).body as { status?: string };
  if (verdict.status !== 'authentic') problems.push(`${uid} verifies ${verdict.status}`);
  return problems;
}

const owner = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');

/** Single registration: POST /v1/patches, anchored through the anchor batcher (a batch of one). */
export const registrationScenario: Scenario<void> = {
  kind: 'registration',
  scope: '^(registration|anchor-batch)-',
  stackOverrides: {},
  prepare: (env) => fundAndSyncPool(env.stack, 40),
  arrange: () => Promise.resolve(),
  async start(env, label) {
    const uid = `PP-CM-REG-${label}`;
    const accepted = await env.api.adminPost('/v1/patches', registrationBody(uid, owner));
    if (accepted.status !== 202) throw new Error(`registration refused: ${JSON.stringify(accepted.body)}`);
    let done: Awaited<ReturnType<typeof statusDone>> | undefined;
    return {
      expectedTransactions: 1,
      workflowIds: [registrationWorkflowId(uid)],
      async done(timeoutMs) {
        done = await statusDone(env, accepted.body.statusUrl as string, timeoutMs);
      },
      async check() {
        if (done?.state !== 'completed' || done.status !== 'anchored') return [`registration ended ${JSON.stringify(done)}`];
        const anchored = await patchModel(env.stack.deps.mongo).findById(uid).lean();
        return anchoredOnce(env, uid, anchored?.anchor?.txid);
      },
    };
  },
};

/** Bulk registration: POST /v1/patch-batches of a few patches, sealed in chunks and anchored in one transaction. */
export const bulkRegistrationScenario: Scenario<void> = {
  kind: 'bulk registration',
  scope: '^bulk-registration-',
  stackOverrides: {},
  prepare: (env) => fundAndSyncPool(env.stack, 40),
  arrange: () => Promise.resolve(),
  async start(env, label) {
    const uids = [1, 2, 3].map((i) => `PP-CM-BULK-${label}-${i}`);
    const posted = await env.api.call('POST', '/v1/patch-batches', JSON.stringify(uids.map((uid) => registrationBody(uid, owner))), {
      'content-type': 'application/json',
      'x-api-key': env.stack.deps.config.auth.apiKey,
      'idempotency-key': `crash-matrix-${label}`,
    });
    if (posted.status !== 202) throw new Error(`batch refused: ${JSON.stringify(posted.body)}`);
    const batchId = String(posted.body.batchId);
    type View = { state: string; counts: Record<string, number>; txids: string[] };
    let view: View | undefined;
    return {
      expectedTransactions: 1,
      workflowIds: [bulkRegistrationWorkflowId(batchId)],
      async done(timeoutMs) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          view = (await env.api.adminGet(`/v1/patch-batches/${batchId}`)).body as View;
          if (view.state === 'completed' || view.state === 'failed') return;
          if (Date.now() > deadline) throw new Error(`batch ${batchId} still ${view.state}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      },
      async check() {
        const problems: string[] = [];
        if (view?.state !== 'completed' || view.counts.anchored !== uids.length || view.txids.length !== 1) {
          return [`batch ended ${JSON.stringify(view)}`];
        }
        for (const uid of uids) {
          const anchored = await patchModel(env.stack.deps.mongo).findById(uid).lean();
          problems.push(...(await anchoredOnce(env, uid, anchored?.anchor?.txid)));
        }
        return problems;
      },
    };
  },
};

/**
 * Transfer: a patch registered to a new owner (uncrashed), then POST /v1/patches/:uid/transfers to another. Each run
 * logs its owner in afresh: a row outlasts an SVD session.
 */
let bob: TestOwner | undefined;
export const transferScenario: Scenario<{ uid: string; headTxid: string; alice: TestOwner }> = {
  kind: 'transfer',
  scope: '^(transfer|anchor-batch)-',
  stackOverrides: { PUBLIC_API_MAX: '100000' },
  async prepare(env) {
    await fundAndSyncPool(env.stack, 60);
    bob = await loggedInOwner(env.baseUrl, env.stack.deps.config.auth.apiKey);
  },
  async arrange(env, label) {
    const uid = `PP-CM-XFER-${label}`;
    const alice = await loggedInOwner(env.baseUrl, env.stack.deps.config.auth.apiKey);
    const accepted = await env.api.adminPost('/v1/patches', registrationBody(uid, alice.address));
    const done = await statusDone(env, accepted.body.statusUrl as string, 120_000);
    if (done.status !== 'anchored') throw new Error(`registration to transfer ended ${JSON.stringify(done)}`);
    const patch = await patchModel(env.stack.deps.mongo).findById(uid).lean();
    return { uid, headTxid: patch!.head!.txid, alice };
  },
  async start(env, _label, { uid, headTxid, alice }) {
    const message = {
      purpose: 'patchproof.transfer' as const,
      uid,
      headTxid,
      newOwner: bob!.address,
      nonce: newNonce(),
      expiresAt: new Date(Date.now() + 30 * 60_000).toISOString(),
    };
    const { pubKeyHex, signatureDerHex } = signOwnerMessage(alice.privHex, message);
    const body = {
      newOwner: message.newOwner,
      headTxid,
      nonce: message.nonce,
      expiresAt: message.expiresAt,
      ownerPubKey: pubKeyHex,
      ownerSignature: signatureDerHex,
    };
    const accepted = await env.api.post(`/v1/patches/${uid}/transfers`, body, { authorization: `Bearer ${alice.token}` });
    if (accepted.status !== 202) throw new Error(`transfer refused: ${JSON.stringify(accepted.body)}`);
    const transferId = String(accepted.body.transferId);
    let done: Awaited<ReturnType<typeof statusDone>> | undefined;
    return {
      expectedTransactions: 1,
      workflowIds: [transferId],
      async done(timeoutMs) {
        done = await statusDone(env, accepted.body.statusUrl as string, timeoutMs);
      },
      async check() {
        if (done?.state !== 'completed' || done.status !== 'anchored') return [`transfer ended ${JSON.stringify(done)}`];
        const problems: string[] = [];
        const copies = await transferModel(env.stack.deps.mongo).countDocuments({ uid });
        if (copies !== 1) problems.push(`${copies} transfer documents for ${uid}`);
        const patch = await patchModel(env.stack.deps.mongo).findById(uid).lean();
        if (patch?.head?.txid !== done.txid) problems.push(`head of ${uid} is ${patch?.head?.txid}, not ${done.txid}`);
        if (patch?.owner !== bob!.address) problems.push(`${uid} is owned by ${patch?.owner}`);
        const verdict = (await env.api.get(`/v1/patches/${uid}/verify`)).body as { status?: string };
        if (verdict.status !== 'authentic') problems.push(`${uid} verifies ${verdict.status}`);
        return problems;
      },
    };
  },
};

function poolRun<R>(
  env: MatrixStack,
  started: { workflowId: string; runId: string },
  check: (result: R) => Promise<string[]>,
  expected: number,
): StartedRun {
  let result: R | undefined;
  let state: string | undefined;
  return {
    expectedTransactions: expected,
    workflowIds: [started.workflowId],
    async done(timeoutMs) {
      const done = await waitForPoolOperation(env.stack.deps.temporal, started.workflowId, started.runId, { pollMs: 200, timeoutMs });
      state = done.state;
      if (done.state === 'completed') result = done.result as R;
    },
    async check() {
      if (state !== 'completed' || !result) {
        return [
          `${started.workflowId} ended ${JSON.stringify(await getPoolOperationStatus(env.stack.deps.temporal, started.workflowId, started.runId))}`,
        ];
      }
      return check(result);
    },
  };
}

const availableFunding = (env: MatrixStack) =>
  utxoModel(env.stack.deps.mongo).countDocuments({ status: 'available', lockingScriptHex: env.stack.accounts.funding.lockingScriptHex });

/** Pool top-up: each run raises the pool's target by two and splits a fresh confirmed output into the missing ones. */
let topUpTarget = 2;
export const topUpScenario: Scenario<{ target: number }> = {
  kind: 'pool top-up',
  scope: '^utxo-topup-',
  stackOverrides: { UTXO_MIN_POOL: '2', UTXO_SPLIT_SIZE_SATS: '4000', DUST_THRESHOLD_SATS: '1000' },
  prepare: () => Promise.resolve(),
  async arrange(env) {
    topUpTarget += 2;
    await writePoolSetting(env.stack.deps.mongo, 'UTXO_MIN_POOL', topUpTarget, 'crash-matrix');
    await env.stack.fund(env.stack.accounts.funding.address, 20_000);
    return { target: topUpTarget };
  },
  async start(env, _label, { target }) {
    const started = await startTopUp(env.stack.deps.temporal, env.stack.accounts.funding.keyIdentifier, { requestedBy: 'test' });
    return poolRun<TopUpReport>(
      env,
      started,
      async (report) => {
        const problems: string[] = [];
        if (report.outcome !== 'completed' || !report.transaction) problems.push(`top-up ${report.outcome}: ${report.reason ?? ''}`);
        // The split's outputs are added once confirmed; count them then.
        const deadline = Date.now() + 30_000;
        let available = await availableFunding(env);
        while (available < target && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          available = await availableFunding(env);
        }
        if (available < target) problems.push(`${available} pool outputs available, target ${target}`);
        return problems;
      },
      1,
    );
  },
};

/** Change sweep: each run consolidates six fresh dust outputs of the funding address in one transaction. */
const DUST_OUTPUTS = 6;
export const sweepScenario: Scenario<void> = {
  kind: 'change sweep',
  scope: '^sweep-',
  stackOverrides: { UTXO_MIN_POOL: '1', DUST_THRESHOLD_SATS: '1000', DUST_SWEEP_LIMIT: '5' },
  prepare: () => Promise.resolve(),
  async arrange(env) {
    for (let i = 0; i < DUST_OUTPUTS; i++) await env.stack.fund(env.stack.accounts.funding.address, 600 + i);
    const sync = await startSync(env.stack.deps.temporal, env.stack.accounts.funding.keyIdentifier, 'test');
    await waitForPoolOperation(env.stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 100 });
  },
  async start(env) {
    const { funding } = env.stack.accounts;
    const started = await startSweep(env.stack.deps.temporal, {
      requestedBy: 'test',
      changeAddress: funding.address,
      changeKeyId: funding.keyIdentifier,
      destinationAddress: funding.address,
      dryRun: false,
    });
    return poolRun<SweepReport>(
      env,
      started,
      async (report) => {
        const problems: string[] = [];
        if (report.outcome !== 'completed' || !report.transaction) problems.push(`sweep ${report.outcome}: ${report.reason ?? ''}`);
        if (report.inputCount < DUST_OUTPUTS - 1) problems.push(`sweep spent ${report.inputCount} outputs`);
        const dustLeft = await utxoModel(env.stack.deps.mongo).countDocuments({ status: 'available', satoshis: { $lt: 1000 } });
        if (dustLeft > 0) problems.push(`${dustLeft} dust outputs still available`);
        return problems;
      },
      1,
    );
  },
};

/**
 * KMS rotation of the funding key, through its cutover: each run rotates from the key the last one left active to a
 * fresh key (created in the dev KMS first, as an operator does), auto-approved, no grace period, and sweeps the one
 * output of the old address to the new one.
 */
let fundingKey: string | undefined;
export const kmsRotationScenario: Scenario<{ oldKey: string; newKey: string; newAddress: string }> = {
  kind: 'KMS rotation',
  scope: '^(kms-rotation-funding|sweep-)',
  stackOverrides: { KEY_SETTINGS_CACHE_MS: '200', UTXO_MIN_POOL: '1' },
  prepare(env) {
    fundingKey = env.stack.accounts.funding.keyIdentifier;
    return Promise.resolve();
  },
  async arrange(env, label) {
    const oldKey = fundingKey!;
    const newKey = `funding-cm-${label}`;
    env.stack.kms.keys.create(newKey);
    const oldAddress = PublicKey.fromString(env.stack.kms.keys.describe(oldKey).pubKeyHex).toAddress('testnet');
    await env.stack.fund(oldAddress, 30_000);
    const sync = await startSync(env.stack.deps.temporal, oldKey, 'test');
    await waitForPoolOperation(env.stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 100 });
    return { oldKey, newKey, newAddress: PublicKey.fromString(env.stack.kms.keys.describe(newKey).pubKeyHex).toAddress('testnet') };
  },
  async start(env, _label, { oldKey, newKey, newAddress }) {
    const { temporal: client, config, mongo } = env.stack.deps;
    const input = kmsRotationInput(config, {
      purpose: 'funding',
      newKeyIdentifier: newKey,
      requestedBy: 'crash-matrix',
      startedByKeyId: 'crash-matrix',
      trigger: 'test',
      autoApproveAfter: '1s',
      gracePeriodDays: 0,
    });
    const started = await startKmsRotation(client, input);
    const handle = client.workflow.getHandle(kmsRotationWorkflowId('funding'), started.runId);
    let report: KmsRotationReport | undefined;
    let failure: string | undefined;
    return {
      expectedTransactions: 1,
      workflowIds: [kmsRotationWorkflowId('funding')],
      async done(timeoutMs) {
        const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('rotation still running')), timeoutMs).unref());
        try {
          report = await Promise.race([handle.result() as Promise<KmsRotationReport>, timer]);
        } catch (err) {
          if (err instanceof Error && err.message === 'rotation still running') throw err;
          failure = err instanceof Error ? err.message : String(err);
        }
        fundingKey = report ? newKey : fundingKey;
      },
      async check() {
        if (!report || report.outcome !== 'completed') return [`rotation ended ${failure ?? JSON.stringify(report)}`];
        const problems: string[] = [];
        if (report.oldKey?.keyIdentifier !== oldKey || report.newKey?.keyIdentifier !== newKey) {
          problems.push(`rotated ${report.oldKey?.keyIdentifier} → ${report.newKey?.keyIdentifier}`);
        }
        const active = await keyringFromConfig(config, mongo).activeKeyId('funding');
        if (active !== newKey) problems.push(`active funding key is ${active}`);
        const utxos = utxoModel(mongo);
        const leftOnOld = await utxos.countDocuments({ keyIdentifier: oldKey, status: 'available' });
        if (leftOnOld !== 0) problems.push(`${leftOnOld} outputs still available under ${oldKey}`);
        const moved = report.sweeps.filter((s) => s.outcome === 'completed' && s.transaction);
        if (moved.length !== 1 || moved[0]!.destinationAddress !== newAddress) problems.push(`sweeps: ${JSON.stringify(report.sweeps)}`);
        else if ((await utxos.countDocuments({ txid: moved[0]!.transaction!.txid, keyIdentifier: newKey })) !== 1) {
          problems.push(`the swept output is not once in the pool under ${newKey}`);
        }
        return problems;
      },
    };
  },
};

export const SCENARIOS = [
  registrationScenario,
  bulkRegistrationScenario,
  transferScenario,
  topUpScenario,
  sweepScenario,
  kmsRotationScenario,
] as Scenario<unknown>[];

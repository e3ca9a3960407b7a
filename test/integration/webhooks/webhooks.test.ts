import type { NativeConnection, Worker } from '@temporalio/worker';
import { createRegistrationActivities } from '../../../activities/registration/registrationActivities';
import { patchModel } from '../../../src/registration/models';
import { createApiKey } from '../../../src/tenancy/keyStore';
import type { ApiKeyScope } from '../../../src/tenancy/apiKeys';
import { webhookEventId } from '../../../src/webhooks/events';
import { webhookDeliveryWorkflowId } from '../../../src/webhooks/ids';
import { webhookDeliveryModel, webhookEndpointModel, webhookEventModel } from '../../../src/webhooks/models';
import { createWebhookActivities } from '../../../activities/webhooks/webhookActivities';
import { MockActivityEnvironment } from '@temporalio/testing';
import { startWebhookReceiver, type WebhookReceiver } from '../../../ops/stand-ins/webhook-receiver/server';
import { ensureIndexes } from '../../../src/db/indexes';
import { registerModels } from '../../../src/db/models';
import { recordHistoryIfAsked } from '../../support/histories';
import { apiClient } from '../../support/patchApi';
import { runPatchproof } from '../../support/processes';
import { activityDeps, createTestWorker, startTestApi, testEnvironment, type TestApi } from '../../support/stack';

interface DeliveryLog {
  id: string;
  eventId: string;
  eventType: string;
  status: string;
  redeliveryOf: string | null;
  attempts: { attempt: number; statusCode: number | null; errorClass: string | null }[];
}

/**
 * Webhooks on the real stack: the API, the main worker with its real activities, Temporal, the database, and the
 * receiver stand-in over real HTTP. Retries are shortened through WEBHOOK_RETRY_* so a receiver that is down for
 * three attempts comes back within seconds.
 */
describe('webhooks', () => {
  let api: TestApi;
  let worker: Worker;
  let workerConnection: NativeConnection;
  let running: Promise<void>;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    api = await startTestApi({
      WEBHOOK_ALLOW_LOOPBACK_HTTP: 'true',
      WEBHOOK_RETRY_INITIAL_MS: '300',
      WEBHOOK_RETRY_MAX_INTERVAL_MS: '1000',
      WEBHOOK_TIMEOUT_MS: '2000',
      ADMIN_API_MAX: '100000',
      API_KEY_RATE_MAX: '100000',
    });
    // As the worker does at start: collections and indexes exist before the first concurrent writes and reads.
    registerModels(api.deps.mongo);
    await ensureIndexes(api.deps.mongo);
    ({ worker, connection: workerConnection } = await createTestWorker(api.deps));
    running = worker.run();
    receiver = await startWebhookReceiver();
  }, 60_000);

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await workerConnection?.close();
    await receiver?.close();
    await api?.close();
  });

  const keyFor = async (tenantId: string, scopes: ApiKeyScope[]) =>
    (await createApiKey(api.deps.mongo, { tenantId, name: `${tenantId} test`, scopes, mode: 'test', createdBy: 'test' })).key;

  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 45_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const deliveriesOf = async (client: ReturnType<typeof apiClient>, endpointId: string) => {
    const answer = await client.adminGet(`/v1/webhooks/${endpointId}/deliveries`);
    expect(answer.status).toBe(200);
    return answer.body.deliveries as DeliveryLog[];
  };

  const seedPendingPatch = async (uid: string, tenantId: string) => {
    const now = new Date();
    await patchModel(api.deps.mongo).create({
      _id: uid,
      registrationId: `registration-${uid}`,
      status: 'pending',
      requestHash: 'h',
      idempotencyKey: null,
      record: { product: { name: 'Field jacket' } },
      recordHash: `rh-${uid}`,
      issuerSignature: null,
      anchor: null,
      owner: '1BoatSLRHtKNngkdXEeobR76b53LETtpyT',
      head: null,
      lastError: null,
      tenantId,
      createdBy: 'seed',
      createdAt: now,
      updatedAt: now,
    });
  };

  let acme: ReturnType<typeof apiClient>;
  let acmeEndpointId: string;
  let acmeSecret: string;

  it('a receiver down for 3 attempts then up gets exactly one successful, verifiable delivery per event', async () => {
    acme = apiClient(api.baseUrl, await keyFor('acme', ['admin']));
    const created = await acme.adminPost('/v1/webhooks', {
      url: `${receiver.url}/hooks/acme`,
      events: ['key.revoked', 'registration.failed'],
    });
    expect(created.status).toBe(201);
    acmeSecret = created.body.secret as string;
    acmeEndpointId = (created.body.endpoint as { id: string }).id;
    expect(acmeSecret).toMatch(/^whsec_/);
    receiver.setSecrets([acmeSecret]);
    receiver.failNext(3);

    // key.revoked from the API's revoke route.
    const doomed = await createApiKey(api.deps.mongo, {
      tenantId: 'acme',
      name: 'old',
      scopes: ['patches:read'],
      mode: 'test',
      createdBy: 'test',
    });
    expect((await acme.adminPost(`/v1/admin/api-keys/${doomed.view.id}/revoke`, {})).status).toBe(200);
    // registration.failed from the registration activity itself, emitted twice (an activity retry): one delivery.
    await seedPendingPatch('WH-FAIL-1', 'acme');
    const registration = createRegistrationActivities(activityDeps(api.deps));
    await registration.markRegistrationFailed({ uid: 'WH-FAIL-1', reason: 'pool empty' });
    await registration.markRegistrationFailed({ uid: 'WH-FAIL-1', reason: 'pool empty' });

    const logs = await waitFor('both deliveries to succeed', async () => {
      const deliveries = await deliveriesOf(acme, acmeEndpointId);
      return deliveries.length === 2 && deliveries.every((d) => d.status === 'succeeded') ? deliveries : undefined;
    });

    const revokedEvent = webhookEventId('key.revoked', doomed.view.id);
    const failedEvent = webhookEventId('registration.failed', 'WH-FAIL-1');
    expect(logs.map((d) => d.eventId).sort()).toEqual([revokedEvent, failedEvent].sort());
    expect(logs.map((d) => d.id).sort()).toEqual(
      [webhookDeliveryWorkflowId(revokedEvent, acmeEndpointId), webhookDeliveryWorkflowId(failedEvent, acmeEndpointId)].sort(),
    );
    // Three answers of 503, then exactly one 200 per event, each signed so the documented recipe accepts it.
    expect(receiver.deliveries.filter((d) => d.answered === 503)).toHaveLength(3);
    const accepted = receiver.deliveries.filter((d) => d.answered === 200);
    expect(accepted.map((d) => d.eventId).sort()).toEqual([revokedEvent, failedEvent].sort());
    expect(accepted.every((d) => d.verified === true && d.signatures === 1)).toBe(true);
    // The delivery log counts every attempt: 3 failed (503, http-status) and 2 that succeeded.
    const attempts = logs.flatMap((d) => d.attempts);
    expect(attempts.filter((a) => a.statusCode === 503 && a.errorClass === 'http-status')).toHaveLength(3);
    expect(attempts.filter((a) => a.statusCode === 200 && a.errorClass === null)).toHaveLength(2);

    const retried = [...logs].sort((a, b) => b.attempts.length - a.attempts.length)[0]!;
    expect(retried.attempts.length).toBeGreaterThan(1);
    await recordHistoryIfAsked(api.deps.temporal, retried.id, 'webhook-delivery-retried-delivered');

    const failedBody = accepted.find((d) => d.eventId === failedEvent)!.body as { type: string; tenantId: string; data: unknown };
    expect(failedBody).toMatchObject({ type: 'registration.failed', tenantId: 'acme', data: { uid: 'WH-FAIL-1', status: 'failed' } });
    // No personal data or secrets: the failure reason and the owner address are not in the body.
    expect(JSON.stringify(receiver.deliveries.map((d) => d.body))).not.toMatch(/pool empty|1BoatSLR|whsec_/);
  }, 60_000);

  it('redelivers a logged event on request: same event id and body, a new delivery whose signature verifies', async () => {
    const [original] = (await deliveriesOf(acme, acmeEndpointId)).filter((d) => d.eventType === 'key.revoked');
    const before = receiver.deliveries.filter((d) => d.eventId === original!.eventId && d.answered === 200);
    expect(before).toHaveLength(1);

    const answer = await acme.adminPost(`/v1/webhooks/${acmeEndpointId}/deliveries/${original!.id}/redeliver`, {});
    expect(answer.status).toBe(202);
    expect(answer.body.redeliveryOf).toBe(original!.id);
    const redelivery = await waitFor('the redelivery', async () => {
      const found = (await deliveriesOf(acme, acmeEndpointId)).find((d) => d.id === answer.body.deliveryId);
      return found?.status === 'succeeded' ? found : undefined;
    });
    expect(redelivery).toMatchObject({ eventId: original!.eventId, redeliveryOf: original!.id });
    const after = receiver.deliveries.filter((d) => d.eventId === original!.eventId && d.answered === 200);
    expect(after).toHaveLength(2);
    expect(after[1]!.body).toEqual(after[0]!.body);
    expect(after[1]!.verified).toBe(true);
  }, 60_000);

  it('signs with both secrets during a rotation, so a receiver holding either one accepts', async () => {
    const rotated = await acme.adminPost(`/v1/webhooks/${acmeEndpointId}/rotate-secret`, {});
    expect(rotated.status).toBe(201);
    const newSecret = rotated.body.secret as string;
    expect((rotated.body.endpoint as { activeSecrets: number }).activeSecrets).toBe(2);

    receiver.setSecrets([newSecret]);
    const doomed = await createApiKey(api.deps.mongo, {
      tenantId: 'acme',
      name: 'old-2',
      scopes: ['patches:read'],
      mode: 'test',
      createdBy: 'test',
    });
    expect((await acme.adminPost(`/v1/admin/api-keys/${doomed.view.id}/revoke`, {})).status).toBe(200);
    const eventId = webhookEventId('key.revoked', doomed.view.id);
    const withNew = await waitFor('the delivery after rotation', () =>
      Promise.resolve(receiver.deliveries.find((d) => d.eventId === eventId)),
    );
    expect(withNew).toMatchObject({ signatures: 2, verified: true, answered: 200 });

    receiver.setSecrets([acmeSecret]);
    const deliveryId = webhookDeliveryWorkflowId(eventId, acmeEndpointId);
    await waitFor('the first delivery logged', async () =>
      (await deliveriesOf(acme, acmeEndpointId)).find((d) => d.id === deliveryId && d.status === 'succeeded'),
    );
    expect((await acme.adminPost(`/v1/webhooks/${acmeEndpointId}/deliveries/${deliveryId}/redeliver`, {})).status).toBe(202);
    const withOld = await waitFor('the redelivery checked with the previous secret', () => {
      const received = receiver.deliveries.filter((d) => d.eventId === eventId);
      return Promise.resolve(received.length >= 2 ? received[1] : undefined);
    });
    expect(withOld).toMatchObject({ signatures: 2, verified: true });

    receiver.setSecrets(['whsec_not-this-endpoints']);
    expect((await acme.adminPost(`/v1/webhooks/${acmeEndpointId}/deliveries/${deliveryId}/redeliver`, {})).status).toBe(202);
    const withWrong = await waitFor('the redelivery checked with a wrong secret', () => {
      const received = receiver.deliveries.filter((d) => d.eventId === eventId);
      return Promise.resolve(received.length >= 3 ? received[2] : undefined);
    });
    expect(withWrong.verified).toBe(false);
    receiver.setSecrets([newSecret]);
  }, 60_000);

  it('stops retrying when the endpoint is removed: the delivery ends failed, with every attempt logged', async () => {
    const hooli = apiClient(api.baseUrl, await keyFor('hooli', ['admin']));
    const created = await hooli.adminPost('/v1/webhooks', { url: `${receiver.url}/hooks/hooli`, events: ['key.revoked'] });
    expect(created.status).toBe(201);
    const endpointId = (created.body.endpoint as { id: string }).id;
    receiver.failNext(1_000, 500);
    try {
      const doomed = await createApiKey(api.deps.mongo, {
        tenantId: 'hooli',
        name: 'x',
        scopes: ['patches:read'],
        mode: 'test',
        createdBy: 'test',
      });
      expect((await hooli.adminPost(`/v1/admin/api-keys/${doomed.view.id}/revoke`, {})).status).toBe(200);
      const deliveryId = webhookDeliveryWorkflowId(webhookEventId('key.revoked', doomed.view.id), endpointId);
      await waitFor('two failed attempts', async () => {
        const [log] = await deliveriesOf(hooli, endpointId);
        return log && log.attempts.length >= 2 ? log : undefined;
      });
      expect(
        (await hooli.call('DELETE', `/v1/webhooks/${endpointId}`, undefined, { 'x-api-key': await keyFor('hooli', ['webhooks:manage']) }))
          .status,
      ).toBe(200);
      const result = (await api.deps.temporal.workflow.getHandle(deliveryId).result()) as { status: string; failure: string | null };
      expect(result).toMatchObject({ status: 'failed', failure: 'WebhookEndpointGone' });
      const [log] = await deliveriesOf(hooli, endpointId);
      expect(log!.status).toBe('failed');
      expect(log!.attempts.at(-1)!.errorClass).toBe('endpoint-gone');
      expect(log!.attempts.slice(0, -1).every((a) => a.statusCode === 500 && a.errorClass === 'http-status')).toBe(true);
      await recordHistoryIfAsked(api.deps.temporal, deliveryId, 'webhook-delivery-endpoint-removed');
    } finally {
      receiver.failNext(0);
    }
  }, 60_000);

  it('emits registration.anchored from the batch anchoring activity only to the record tenant’s subscribed endpoints', async () => {
    const umbrella = apiClient(api.baseUrl, await keyFor('umbrella', ['webhooks:manage']));
    const created = await umbrella.adminPost('/v1/webhooks', { url: `${receiver.url}/hooks/umbrella`, events: ['registration.anchored'] });
    expect(created.status).toBe(201);
    const endpointId = (created.body.endpoint as { id: string }).id;
    const txid = 'ab'.repeat(32);
    await seedPendingPatch('WH-ANCH-U', 'umbrella');
    await seedPendingPatch('WH-ANCH-A', 'acme');
    await patchModel(api.deps.mongo).updateMany(
      { tenantId: { $in: ['umbrella', 'acme'] }, status: 'pending' },
      { $set: { status: 'anchoring', anchor: { txid, vout: 0, proof: null, blockHeight: null } } },
    );
    const registration = createRegistrationActivities(activityDeps(api.deps));
    const records = [
      { uid: 'WH-ANCH-U', recordHash: 'rh-WH-ANCH-U' },
      { uid: 'WH-ANCH-A', recordHash: 'rh-WH-ANCH-A' },
    ];
    expect(
      await registration.markRegistrationsAnchored({ txid, blockHeight: 100, broadcastAt: new Date().toISOString(), records }),
    ).toEqual({
      anchored: 2,
    });
    // The activity's retry after its write landed: nothing modified, the same event, no second delivery.
    await registration.markRegistrationsAnchored({ txid, blockHeight: 100, broadcastAt: new Date().toISOString(), records });

    const eventId = webhookEventId('registration.anchored', 'WH-ANCH-U');
    const [log] = await waitFor('the anchored delivery', async () => {
      const deliveries = await deliveriesOf(umbrella, endpointId);
      return deliveries.some((d) => d.status === 'succeeded') ? deliveries : undefined;
    });
    expect(log).toMatchObject({ eventId, eventType: 'registration.anchored', status: 'succeeded' });
    const received = receiver.deliveries.filter((d) => d.type === 'registration.anchored');
    expect(received.map((d) => d.eventId)).toEqual([eventId]);
    expect((received[0]!.body as { data: unknown }).data).toEqual({ uid: 'WH-ANCH-U', txid, status: 'anchored' });
  }, 60_000);

  it('shows each tenant only its own endpoints and deliveries; another tenant’s answer 404', async () => {
    const globex = apiClient(api.baseUrl, await keyFor('globex', ['webhooks:manage']));
    const own = await globex.adminPost('/v1/webhooks', { url: `${receiver.url}/hooks/globex`, events: ['batch.completed'] });
    expect(own.status).toBe(201);
    const globexEndpoint = (own.body.endpoint as { id: string }).id;

    const globexList = (await globex.adminGet('/v1/webhooks')).body.endpoints as { id: string; tenantId: string }[];
    expect(globexList.map((e) => e.id)).toEqual([globexEndpoint]);
    const acmeList = (await acme.adminGet('/v1/webhooks')).body.endpoints as { id: string }[];
    expect(acmeList.map((e) => e.id)).toEqual([acmeEndpointId]);

    const [acmeDelivery] = await deliveriesOf(acme, acmeEndpointId);
    for (const answer of [
      await globex.adminGet(`/v1/webhooks/${acmeEndpointId}/deliveries`),
      await globex.adminPost(`/v1/webhooks/${acmeEndpointId}/rotate-secret`, {}),
      await globex.adminPost(`/v1/webhooks/${acmeEndpointId}/deliveries/${acmeDelivery!.id}/redeliver`, {}),
      await globex.adminPost(`/v1/webhooks/${globexEndpoint}/deliveries/${acmeDelivery!.id}/redeliver`, {}),
      await globex.call('DELETE', `/v1/webhooks/${acmeEndpointId}`, undefined, {
        'x-api-key': await keyFor('globex', ['webhooks:manage']),
      }),
    ]) {
      expect(answer.status).toBe(404);
      expect(answer.body.error?.code).toBe('NOT_FOUND');
    }
    // acme's endpoint is untouched.
    expect((await webhookEndpointModel(api.deps.mongo).findById(acmeEndpointId).lean())?.removedAt).toBeNull();

    // A read-only key cannot manage webhooks.
    const reader = apiClient(api.baseUrl, await keyFor('globex', ['patches:read']));
    expect((await reader.adminGet('/v1/webhooks')).status).toBe(403);
  });

  it('manages endpoints from the CLI: add (URL checked, secret printed once), list, deliveries, remove', async () => {
    const env = testEnvironment({ MONGODB_URI: api.deps.config.mongo.uri, LOG_LEVEL: 'warn', WEBHOOK_ALLOW_LOOPBACK_HTTP: 'true' });
    const refused = await runPatchproof(
      ['webhooks', 'add', '--tenant', 'cli-co', '--url', 'http://10.0.0.8/hooks', '--events', 'key.revoked'],
      env,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/refused: the host resolves to a non-public address/);

    const added = await runPatchproof(
      ['--json', 'webhooks', 'add', '--tenant', 'cli-co', '--url', `${receiver.url}/hooks/cli`, '--events', 'key.revoked,batch.completed'],
      env,
    );
    expect(added.code).toBe(0);
    const { secret, endpoint } = JSON.parse(added.stdout) as { secret: string; endpoint: { id: string; tenantId: string } };
    expect(secret).toMatch(/^whsec_/);
    expect(endpoint.tenantId).toBe('cli-co');

    const listed = await runPatchproof(['--json', 'webhooks', 'list', '--tenant', 'cli-co'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(secret);
    expect((JSON.parse(listed.stdout) as { endpoints: { id: string; events: string[] }[] }).endpoints).toMatchObject([
      { id: endpoint.id, events: ['key.revoked', 'batch.completed'] },
    ]);
    const deliveries = await runPatchproof(['webhooks', 'deliveries', endpoint.id], env);
    expect(deliveries).toMatchObject({ code: 0, stdout: 'no deliveries\n' });
    // Another tenant named: not found, nothing removed.
    expect((await runPatchproof(['webhooks', 'remove', endpoint.id, '--tenant', 'acme'], env)).code).toBe(1);
    const removed = await runPatchproof(['webhooks', 'remove', endpoint.id, '--tenant', 'cli-co'], env);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('REMOVED');
  }, 60_000);

  it('refuses URLs that resolve to loopback, private or link-local addresses without the dev flag (as in production)', async () => {
    const strict = await startTestApi({ ADMIN_API_MAX: '100000', API_KEY_RATE_MAX: '100000' });
    try {
      expect(strict.deps.config.webhooks.allowLoopbackHttp).toBe(false);
      const key = (
        await createApiKey(strict.deps.mongo, { tenantId: 'acme', name: 'w', scopes: ['webhooks:manage'], mode: 'test', createdBy: 't' })
      ).key;
      const client = apiClient(strict.baseUrl, key);
      for (const url of [
        'https://127.0.0.1/hooks',
        'https://10.0.0.8/hooks',
        'https://169.254.169.254/latest/meta-data',
        'https://[::1]/hooks',
        'https://localhost/hooks',
        `${receiver.url}/hooks/plain-http`,
      ]) {
        const answer = await client.adminPost('/v1/webhooks', { url, events: ['key.revoked'] });
        expect({ url, status: answer.status, code: answer.body.error?.code }).toEqual({ url, status: 400, code: 'VALIDATION_FAILED' });
      }
      expect(await webhookEndpointModel(strict.deps.mongo).countDocuments({})).toBe(0);
    } finally {
      await strict.close();
    }
  });

  it('refuses at delivery time, without the dev flag, a URL that resolves inside; logged once, not retried', async () => {
    // As if DNS changed after registration: the endpoint is stored directly. The real activity runs with the
    // production policy and the system resolver (localhost is 127.0.0.1 / ::1).
    const now = new Date();
    for (const [id, url] of [
      ['we_00000000000000aa', 'https://localhost:9/hooks'],
      ['we_00000000000000ab', 'https://10.1.2.3/hooks'],
      ['we_00000000000000ac', 'https://169.254.169.254/hooks'],
    ] as const) {
      await webhookEndpointModel(api.deps.mongo).create({
        _id: id,
        tenantId: 'initech',
        url,
        events: ['key.revoked'],
        description: '',
        secrets: [{ secret: 'whsec_test', createdAt: now, expiresAt: null }],
        createdAt: now,
        createdBy: 'test',
        removedAt: null,
        updatedAt: now,
      });
      await webhookEventModel(api.deps.mongo).updateOne(
        { _id: 'evt_' + '0'.repeat(32) },
        {
          $setOnInsert: {
            tenantId: 'initech',
            type: 'key.revoked',
            data: { keyId: 'k', status: 'revoked', revokedAt: now.toISOString() },
            createdAt: now,
          },
        },
        { upsert: true },
      );
      const strict = createWebhookActivities({
        mongo: api.deps.mongo,
        logger: api.deps.logger,
        webhooks: { ...api.deps.config.webhooks, allowLoopbackHttp: false },
      });
      const deliveryId = `webhook-delivery-evt_${'0'.repeat(32)}-${id}`;
      const attempt = new MockActivityEnvironment().run(strict.attemptWebhookDelivery, {
        deliveryId,
        eventId: `evt_${'0'.repeat(32)}`,
        endpointId: id,
        redeliveryOf: null,
      });
      await expect(attempt).rejects.toMatchObject({ type: 'WebhookTargetRefused', nonRetryable: true });
      const log = await webhookDeliveryModel(api.deps.mongo).findById(deliveryId).lean();
      expect(log?.attempts.map((a) => a.errorClass)).toEqual(['refused-target']);
    }
    expect(receiver.deliveries.some((d) => d.eventId === `evt_${'0'.repeat(32)}`)).toBe(false);
  });
});

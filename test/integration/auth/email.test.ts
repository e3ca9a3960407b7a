import { randomBytes } from 'node:crypto';
import { PrivateKey } from '@bsv/sdk';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { NativeConnection as Native } from '@temporalio/worker';
import { createEmailActivities } from '../../../activities/email/delivery';
import { emailMessageModel, verificationCodeModel } from '../../../src/auth/models';
import { emailDeliveryWorkflowId } from '../../../src/email/ids';
import { ensureIndexes } from '../../../src/db/indexes';
import { registerModels } from '../../../src/db/models';
import { SvdClient, SvdError } from '../../../src/sdk/svdClient';
import { createEmailWorker, createSmtpTransport } from '../../../workers/emailWorker';
import type { emailDeliveryWorkflow } from '../../../workflows/email/emailDelivery';
import type { EmailDeliveryOutcome } from '../../../workflows/email/shared';
import { recordHistoryIfAsked } from '../../support/histories';
import { createApp } from '../../../api/app';
import { listen } from '../../support/http';
import { ownerAuthTestEnv, startTestApi, type TestApi } from '../../support/stack';
import { testEnv } from '../../support/testEnv';

let api: TestApi;
let worker: Worker;
let connection: NativeConnection;
let running: Promise<void>;
let client: SvdClient;

beforeAll(async () => {
  api = await startTestApi(ownerAuthTestEnv());
  registerModels(api.deps.mongo);
  await ensureIndexes(api.deps.mongo);
  connection = await Native.connect({ address: api.deps.config.temporal.address });
  worker = await createEmailWorker({
    connection,
    namespace: api.deps.config.temporal.namespace,
    deps: {
      mongo: api.deps.mongo,
      logger: api.deps.logger,
      metrics: api.deps.metrics,
      transport: createSmtpTransport(api.deps.config.ownerAuth.smtp),
      from: api.deps.config.ownerAuth.smtp.from,
    },
    workflowBundlePath: testEnv('workflowBundle'),
    shutdownGraceMs: 1_000,
    shutdownForceMs: 5_000,
  });
  running = worker.run();
  client = new SvdClient({ baseUrl: api.baseUrl });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
  await api.close();
});

const address = (prefix = 'owner') => `${prefix}-${randomBytes(4).toString('hex')}@example.com`;

/** Waits for the delivery workflow of a message and returns its result. */
async function delivered(messageId: string): Promise<EmailDeliveryOutcome> {
  return api.deps.temporal.workflow.getHandle<typeof emailDeliveryWorkflow>(emailDeliveryWorkflowId(messageId)).result();
}

/** Reads the newest code mailed to `to` from the SMTP capture, as the owner would from their inbox. */
async function codeFromInbox(to: string): Promise<string> {
  const res = await fetch(`${testEnv('smtpCaptureUrl')}/messages?to=${encodeURIComponent(to)}`);
  const messages = (await res.json()) as { subject: string; text: string }[];
  const newest = messages.at(-1);
  expect(newest?.subject).toBe('Your PatchProof verification code');
  const code = /\b(\d{6})\b/.exec(newest!.text)?.[1];
  if (!code) throw new Error('no code in the mail');
  return code;
}

async function requestAndRead(to: string): Promise<{ code: string; messageId: string }> {
  const { messageId } = await client.requestEmailCode(to);
  expect(await delivered(messageId)).toEqual({ messageId, status: 'sent' });
  return { code: await codeFromInbox(to), messageId };
}

const failureReason = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SvdError) return `${err.code}:${(err.details as { reason?: string } | undefined)?.reason}`;
    throw err;
  }
  return 'resolved';
};

describe('login by email code', () => {
  it('a new owner verifies their email from the mail, registers a key with that token, then logs in by SVD', async () => {
    const to = address();
    const { code, messageId } = await requestAndRead(to);
    const verified = await client.submitEmailCode(to, code);
    expect(verified.userId).toMatch(/^[0-9a-f]{24}$/);

    // The email-verified token is not an SVD session...
    const asSession = await fetch(`${api.baseUrl}/api/owner/session`, { headers: { authorization: `Bearer ${verified.token}` } });
    expect(asSession.status).toBe(401);
    // ...but it proves the account, so it can register the first key.
    const priv = PrivateKey.fromRandom().toHex();
    await expect(client.register(SvdClient.publicKeyOf(priv), verified.token)).resolves.toMatchObject({
      userId: verified.userId,
      replaced: false,
    });
    const login = await client.login(verified.userId, priv);
    const me = await fetch(`${api.baseUrl}/api/owner/session`, { headers: { authorization: `Bearer ${login.token}` } });
    expect(((await me.json()) as { userId: string }).userId).toBe(verified.userId);

    await recordHistoryIfAsked(api.deps.temporal, emailDeliveryWorkflowId(messageId), 'email-delivery-sent');
  });

  it('keeps the code out of MongoDB (hash only), out of the workflow history and out of the logs', async () => {
    const to = address();
    const { code, messageId } = await requestAndRead(to);
    const stored = await verificationCodeModel(api.deps.mongo).findById(to).lean();
    expect(stored?.codeHash).toMatch(/^\$2[aby]\$/);
    expect(stored).not.toHaveProperty('code');
    const message = await emailMessageModel(api.deps.mongo).findById(messageId).lean();
    expect(message).toMatchObject({ status: 'sent', attempts: 1 });
    expect(message).not.toHaveProperty('code');

    const history = JSON.stringify(await api.deps.temporal.workflow.getHandle(emailDeliveryWorkflowId(messageId)).fetchHistory());
    expect(history).toContain(messageId);
    expect(history).not.toContain(code);
    expect(history).not.toContain(to);

    await client.submitEmailCode(to, code);
    const logs = api.deps.logs.text();
    expect(logs).toContain('verification code issued');
    expect(logs).not.toContain(to);
    expect(logs).not.toMatch(new RegExp(`\\b${code}\\b`));
  });

  it('accepts a code once', async () => {
    const to = address();
    const { code } = await requestAndRead(to);
    await client.submitEmailCode(to, code);
    expect(await failureReason(client.submitEmailCode(to, code))).toBe('CODE_INVALID:NotFoundOrExpired');
  });

  it('bounds the guesses per code: after VERIFY_CODE_MAX_ATTEMPTS wrong codes the right one is refused', async () => {
    const to = address();
    const { code } = await requestAndRead(to);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    const reasons = [];
    for (let i = 0; i < api.deps.config.ownerAuth.codes.maxAttempts; i++)
      reasons.push(await failureReason(client.submitEmailCode(to, wrong)));
    expect(new Set(reasons)).toEqual(new Set(['CODE_INVALID:InvalidCode']));
    expect(await failureReason(client.submitEmailCode(to, code))).toBe('CODE_INVALID:NotFoundOrExpired');
  });

  it('keeps the bound when twenty wrong guesses race', async () => {
    const to = address();
    const { code } = await requestAndRead(to);
    const wrong = String((Number(code) + 7) % 1_000_000).padStart(6, '0');
    await Promise.all(Array.from({ length: 20 }, () => failureReason(client.submitEmailCode(to, wrong))));
    const max = api.deps.config.ownerAuth.codes.maxAttempts;
    const stored = await verificationCodeModel(api.deps.mongo).findById(to).lean();
    expect(stored?.attempts ?? max).toBeLessThanOrEqual(max);
    expect(await failureReason(client.submitEmailCode(to, code))).toBe('CODE_INVALID:NotFoundOrExpired');
  });

  it('refuses a code older than 15 minutes, whether or not the database purged it', async () => {
    const to = address();
    const { code } = await requestAndRead(to);
    await verificationCodeModel(api.deps.mongo).updateOne({ _id: to }, { $set: { createdAt: new Date(Date.now() - 16 * 60_000) } });
    expect(await failureReason(client.submitEmailCode(to, code))).toBe('CODE_INVALID:NotFoundOrExpired');
  });

  it('treats a legacy plaintext record as expired and deletes it on the next submit (runbook)', async () => {
    const to = address();
    await api.deps.mongo
      .collection('verification_codes')
      .insertOne({ _id: to as never, code: '123456', createdAt: new Date(), attempts: 0 });
    expect(await failureReason(client.submitEmailCode(to, '123456'))).toBe('CODE_INVALID:NotFoundOrExpired');
    expect(await verificationCodeModel(api.deps.mongo).findById(to).lean()).toBeNull();
  });

  it('a new request replaces the previous code', async () => {
    const to = address();
    const first = await requestAndRead(to);
    const second = await requestAndRead(to);
    if (first.code !== second.code) {
      expect(await failureReason(client.submitEmailCode(to, first.code))).toBe('CODE_INVALID:InvalidCode');
    }
    await expect(client.submitEmailCode(to, second.code)).resolves.toHaveProperty('token');
  });

  it('the same address always gets the same account', async () => {
    const to = address();
    const first = await client.submitEmailCode(to, (await requestAndRead(to)).code);
    const second = await client.submitEmailCode(to, (await requestAndRead(to)).code);
    expect(second.userId).toBe(first.userId);
  });
});

describe('email code rate limits', () => {
  it('limits code requests per address with 429 and Retry-After, counting case and whitespace variants as one address', async () => {
    const limited = await listen(
      createApp({
        ...api.deps,
        config: {
          ...api.deps.config,
          ownerAuth: {
            ...api.deps.config.ownerAuth,
            rateLimits: { ...api.deps.config.ownerAuth.rateLimits, emailCode: { windowMs: 60_000, maxPerIp: 100, maxPerIdentifier: 2 } },
          },
        },
      }),
    );
    try {
      const counters = await api.deps.redis.keys('rl:code-request-*');
      if (counters.length > 0) await api.deps.redis.del(...counters);
      const to = address();
      const statuses = [];
      let last: Response | undefined;
      for (const variant of [to, to.toUpperCase(), ` ${to} `]) {
        last = await fetch(`${limited.baseUrl}/v1/auth/request-verification`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ identifier: variant }),
        });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([202, 202, 429]);
      expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });
});

describe('email delivery workflow', () => {
  it('stops at once on a permanent SMTP rejection (5xx) and records the failure', async () => {
    const to = address('reject');
    const { messageId } = await client.requestEmailCode(to);
    expect(await delivered(messageId)).toEqual({ messageId, status: 'failed', reason: 'SmtpPermanentFailure' });
    const message = await emailMessageModel(api.deps.mongo).findById(messageId).lean();
    expect(message).toMatchObject({ status: 'failed', attempts: 1 });
    expect(message).not.toHaveProperty('code');
    expect(message?.lastError).not.toContain(to);
    const status = await fetch(`${api.baseUrl}/v1/admin/emails/${messageId}`, { headers: { 'x-api-key': api.deps.config.auth.apiKey } });
    const body = (await status.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ messageId, status: 'failed', attempts: 1 });
    expect(JSON.stringify(body)).not.toContain(to);
    await recordHistoryIfAsked(api.deps.temporal, emailDeliveryWorkflowId(messageId), 'email-delivery-rejected');
  });

  it('retries a transient SMTP failure (4xx) with backoff instead of giving up', async () => {
    const to = address('tempfail');
    const { messageId } = await client.requestEmailCode(to);
    const handle = api.deps.temporal.workflow.getHandle(emailDeliveryWorkflowId(messageId));
    const deadline = Date.now() + 15_000;
    let attempts = 0;
    while (Date.now() < deadline && attempts < 2) {
      await new Promise((r) => setTimeout(r, 250));
      attempts = (await emailMessageModel(api.deps.mongo).findById(messageId).lean())?.attempts ?? 0;
    }
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect(await handle.query('emailDeliveryStatus')).toEqual({ state: 'sending' });
    await handle.terminate('test done');
  });

  it('does not send a code that expired before delivery, and drops its plaintext', async () => {
    const messageId = randomBytes(8).toString('hex');
    await emailMessageModel(api.deps.mongo).create({
      _id: messageId,
      kind: 'verification-code',
      to: address(),
      code: '123456',
      status: 'queued',
      attempts: 0,
      createdAt: new Date(Date.now() - 16 * 60_000),
    });
    const sent: unknown[] = [];
    const activities = createEmailActivities({
      mongo: api.deps.mongo,
      logger: api.deps.logger,
      transport: { sendMail: (mail: unknown) => (sent.push(mail), Promise.resolve({})) } as never,
      from: 'x@example.com',
    });
    await expect(activities.deliverEmail(messageId)).rejects.toMatchObject({ type: 'EmailExpired', nonRetryable: true });
    expect(sent).toEqual([]);
    expect(await emailMessageModel(api.deps.mongo).findById(messageId).lean()).not.toHaveProperty('code');
  });

  it('starts one delivery per message id', async () => {
    const { startEmailDelivery } = await import('../../../src/email/launch');
    const to = address();
    const { messageId } = await client.requestEmailCode(to);
    const again = await startEmailDelivery(api.deps.temporal, messageId);
    expect(again.alreadyStarted).toBe(true);
    await delivered(messageId);
    const inbox = (await (await fetch(`${testEnv('smtpCaptureUrl')}/messages?to=${encodeURIComponent(to)}`)).json()) as unknown[];
    expect(inbox).toHaveLength(1);
  });
});

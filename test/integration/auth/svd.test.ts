import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PrivateKey } from '@bsv/sdk';
import express from 'express';
import jwt from 'jsonwebtoken';
import { Types } from 'mongoose';
import { createApp, type AppDeps } from '../../../api/app';
import { createDevKms } from '../../../ops/stand-ins/dev-kms/server';
import { configuredKeyNames } from '../../../ops/stand-ins/dev-kms/keyStore';
import { freePort, startRedis } from '../../../ops/dev-stack/services';
import { makeChallenge, signChallenge, parseChallenge } from '../../../src/auth/svdCrypto';
import { createTokenKeyring } from '../../../src/auth/tokens';
import { parseDerSignature, toHighS } from '../../../src/chain/ecdsa';
import { ensureIndexes } from '../../../src/db/indexes';
import { registerModels } from '../../../src/db/models';
import { SvdClient, SvdError } from '../../../src/sdk/svdClient';
import { listen, type Listening } from '../../support/http';
import { registerPrivateKey } from '../../support/runCapture';
import { connectTestDeps, startTestApi, type TestApi } from '../../support/stack';
import { testEnv } from '../../support/testEnv';

const KEY_OLD = 'old-kid-secret-0123456789abcdef0123456789';
const KEY_NEW = 'new-kid-secret-0123456789abcdef0123456789';

interface Owner {
  userId: string;
  privHex: string;
  pmcHex: string;
}

function newOwner(): Owner {
  const priv = PrivateKey.fromRandom();
  registerPrivateKey('svdPmcPrivHex', priv.toHex());
  return { userId: new Types.ObjectId().toHexString(), privHex: priv.toHex(), pmcHex: priv.toPublicKey().toString() };
}

let api: TestApi;
let client: SvdClient;
const extraServers: Listening[] = [];

beforeAll(async () => {
  api = await startTestApi({
    JWT_KEYS: `k-new:${KEY_NEW},k-old:${KEY_OLD}`,
    JWT_ACTIVE_KID: 'k-new',
    SVD_RATE_MAX_PER_IP: '10000',
    SVD_RATE_MAX_PER_USER: '10000',
    PUBLIC_API_MAX: '10000',
    ADMIN_API_MAX: '10000',
  });
  registerModels(api.deps.mongo);
  await ensureIndexes(api.deps.mongo);
  client = new SvdClient({ baseUrl: api.baseUrl });
});

afterAll(async () => {
  await Promise.all(extraServers.splice(0).map((s) => s.close()));
  await api.close();
});

/** The fields the tests read from answers: the error envelope and the canary's snapshot. */
interface ApiBody {
  error: { code: string; message: string; details: { reason?: string } };
  metrics: { events: { eventType: string; count: number }[]; challengeAge: { count: number } };
  [field: string]: unknown;
}

async function post(baseUrl: string, route: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${baseUrl}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as ApiBody };
}

async function get(baseUrl: string, route: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${baseUrl}${route}`, { headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as ApiBody };
}

const adminRegister = (owner: Owner, extra: Record<string, unknown> = {}) =>
  post(
    api.baseUrl,
    '/api/svd/register',
    { userId: owner.userId, pmcHex: owner.pmcHex, ...extra },
    { 'x-api-key': api.deps.config.auth.apiKey },
  );

async function registered(): Promise<Owner> {
  const owner = newOwner();
  expect((await adminRegister(owner)).status).toBe(201);
  return owner;
}

const errorCode = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SvdError) return err.code;
    throw err;
  }
  return 'resolved';
};

const session = (baseUrl: string, token: string) => get(baseUrl, '/api/owner/session', { authorization: `Bearer ${token}` });

/** An app on the same stores with other configuration (keyring, TTLs), as a second deploy would be. */
async function appWith(mutate: (config: AppDeps['config']) => AppDeps['config']): Promise<string> {
  const server = await listen(createApp({ ...api.deps, config: mutate(api.deps.config) }));
  extraServers.push(server);
  return server.baseUrl;
}

describe('SVD login', () => {
  it('logs in through the SDK with a registered key, and the session opens an owner route', async () => {
    const owner = await registered();
    const login = await client.login(owner.userId, owner.privHex);
    expect(login.kid).toBe('k-new');
    const me = await session(api.baseUrl, login.token);
    expect(me.status).toBe(200);
    expect(me.body.userId).toBe(owner.userId);
    expect(me.headers.get('cache-control')).toBe('no-store');
  });

  it('publishes the active kid, cacheable', async () => {
    const res = await get(api.baseUrl, '/api/svd/kid');
    expect(res.body).toEqual({ kid: 'k-new' });
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
  });

  it('begin answers the same shape for a registered and an unknown user, and never reveals the key', async () => {
    const owner = await registered();
    const known = await post(api.baseUrl, '/api/svd/begin', { userId: owner.userId });
    const unknown = await post(api.baseUrl, '/api/svd/begin', { userId: new Types.ObjectId().toHexString() });
    expect(known.status).toBe(200);
    expect(unknown.status).toBe(200);
    expect(Object.keys(known.body).sort()).toEqual(Object.keys(unknown.body).sort());
    expect(JSON.stringify(known.body)).not.toContain(owner.pmcHex);
    expect(known.headers.get('cache-control')).toBe('no-store');
  });

  it("a second begin does not overwrite the first client's challenge", async () => {
    const owner = await registered();
    const first = await client.begin(owner.userId);
    const second = await client.begin(owner.userId);
    expect(second.M).not.toBe(first.M);
    await expect(client.complete(owner.userId, first.M, SvdClient.signChallenge(owner.privHex, first.M))).resolves.toHaveProperty('token');
    await expect(client.complete(owner.userId, second.M, SvdClient.signChallenge(owner.privHex, second.M))).resolves.toHaveProperty(
      'token',
    );
  });

  it('keeps at most SVD_MAX_PENDING_CHALLENGES per user: the oldest gives way', async () => {
    const owner = await registered();
    const max = api.deps.config.ownerAuth.svd.maxPendingChallenges;
    const challenges = [];
    for (let i = 0; i <= max; i++) challenges.push(await client.begin(owner.userId));
    expect(await api.deps.redis.zcard(`svd:pending:${owner.userId}`)).toBe(max);
    const oldest = challenges[0]!;
    expect(await errorCode(client.complete(owner.userId, oldest.M, SvdClient.signChallenge(owner.privHex, oldest.M)))).toBe('SVD_EXPIRED');
    const newest = challenges[max]!;
    await expect(client.complete(owner.userId, newest.M, SvdClient.signChallenge(owner.privHex, newest.M))).resolves.toHaveProperty(
      'token',
    );
  });

  it('a wrong signature does not burn the challenge: the owner can still use it (hole 16)', async () => {
    const owner = await registered();
    const attacker = newOwner();
    const { M } = await client.begin(owner.userId);
    expect(await errorCode(client.complete(owner.userId, M, SvdClient.signChallenge(attacker.privHex, M)))).toBe('SVD_INVALID_SIGNATURE');
    await expect(client.complete(owner.userId, M, SvdClient.signChallenge(owner.privHex, M))).resolves.toHaveProperty('token');
  });

  it('refuses a replayed challenge with 409 SVD_REPLAYED', async () => {
    const owner = await registered();
    const { M } = await client.begin(owner.userId);
    const signature = SvdClient.signChallenge(owner.privHex, M);
    await client.complete(owner.userId, M, signature);
    const replay = await post(api.baseUrl, '/api/svd/complete', { userId: owner.userId, M, signatureHex: signature });
    expect(replay.status).toBe(409);
    expect(replay.body.error.code).toBe('SVD_REPLAYED');
  });

  it('gives exactly one token when ten completes of one challenge race', async () => {
    const owner = await registered();
    const { M } = await client.begin(owner.userId);
    const signature = SvdClient.signChallenge(owner.privHex, M);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => post(api.baseUrl, '/api/svd/complete', { userId: owner.userId, M, signatureHex: signature })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409).map((r) => r.body.error.code)).toEqual(Array(9).fill('SVD_REPLAYED'));
  });

  it('refuses a high-S (malleable) signature with 401, and the challenge stays usable', async () => {
    const owner = await registered();
    const { M } = await client.begin(owner.userId);
    const lowS = SvdClient.signChallenge(owner.privHex, M);
    const highS = toHighS(parseDerSignature(lowS)!).toDER('hex') as string;
    const res = await post(api.baseUrl, '/api/svd/complete', { userId: owner.userId, M, signatureHex: highS });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ code: 'SVD_INVALID_SIGNATURE', message: expect.stringMatching(/high-S/) });
    await expect(client.complete(owner.userId, M, lowS)).resolves.toHaveProperty('token');
    const metrics = await api.deps.metrics.registry.getSingleMetricAsString('patchproof_svd_events_total');
    expect(metrics).toMatch(/event_type="malleable_reject"/);
  });

  it('refuses an M whose embedded time is older than the TTL plus skew, or in the future, even with a valid signature', async () => {
    const owner = await registered();
    const { challengeTtlSec, clockSkewSec } = api.deps.config.ownerAuth.svd;
    const nowSec = Math.floor(Date.now() / 1000);
    const old = makeChallenge(nowSec - challengeTtlSec - clockSkewSec - 5);
    const future = makeChallenge(nowSec + clockSkewSec + 60);
    const sign = (c: ReturnType<typeof makeChallenge>) => signChallenge(PrivateKey.fromHex(owner.privHex), c);
    const expired = await post(api.baseUrl, '/api/svd/complete', { userId: owner.userId, M: old.hex, signatureHex: sign(old) });
    expect([expired.status, expired.body.error.code]).toEqual([400, 'SVD_EXPIRED']);
    const ahead = await post(api.baseUrl, '/api/svd/complete', { userId: owner.userId, M: future.hex, signatureHex: sign(future) });
    expect([ahead.status, ahead.body.error.code]).toEqual([400, 'SVD_BAD_CHALLENGE']);
  });

  it('refuses a challenge the server issued once its TTL has passed', async () => {
    const owner = await registered();
    const shortTtl = await appWith((c) => ({
      ...c,
      ownerAuth: { ...c.ownerAuth, svd: { ...c.ownerAuth.svd, challengeTtlSec: 1, clockSkewSec: 0 } },
    }));
    const shortClient = new SvdClient({ baseUrl: shortTtl });
    const { M } = await shortClient.begin(owner.userId);
    await new Promise((r) => setTimeout(r, 2_100));
    expect(await errorCode(shortClient.complete(owner.userId, M, SvdClient.signChallenge(owner.privHex, M)))).toBe('SVD_EXPIRED');
  });

  it("refuses another user's challenge", async () => {
    const owner = await registered();
    const other = await registered();
    const { M } = await client.begin(other.userId);
    expect(await errorCode(client.complete(owner.userId, M, SvdClient.signChallenge(owner.privHex, M)))).toBe('SVD_EXPIRED');
  });

  it('an unknown user gets the same 401 as a wrong signature', async () => {
    const stranger = newOwner();
    const { M } = await client.begin(stranger.userId);
    const res = await post(api.baseUrl, '/api/svd/complete', {
      userId: stranger.userId,
      M,
      signatureHex: SvdClient.signChallenge(stranger.privHex, M),
    });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ code: 'SVD_INVALID_SIGNATURE', message: 'The signature does not verify.' });
  });
});

describe('key registration (hole 15)', () => {
  it('refuses a registration without proof, so nobody can take over an account', async () => {
    const owner = await registered();
    const attacker = newOwner();
    const res = await post(api.baseUrl, '/api/svd/register', { userId: owner.userId, pmcHex: attacker.pmcHex });
    expect(res.status).toBe(401);
    expect(await errorCode(client.login(owner.userId, attacker.privHex))).toBe('SVD_INVALID_SIGNATURE');
    await expect(client.login(owner.userId, owner.privHex)).resolves.toHaveProperty('token');
  });

  it('never silently replaces a key: the API key needs replace:true, an email-verified token gets 409', async () => {
    const owner = await registered();
    const attacker = newOwner();
    const again = await adminRegister({ ...attacker, userId: owner.userId });
    expect([again.status, again.body.error.code]).toEqual([409, 'CONFLICT']);
    const keyring = createTokenKeyring(api.deps.config.ownerAuth.jwt, 0);
    const emailToken = keyring.issue({ type: 'email-verified', userId: owner.userId, jti: 'e1' }).token;
    const byEmail = await post(api.baseUrl, '/api/svd/register', { pmcHex: attacker.pmcHex }, { authorization: `Bearer ${emailToken}` });
    expect([byEmail.status, byEmail.body.error.code]).toEqual([409, 'CONFLICT']);
    await expect(client.login(owner.userId, owner.privHex)).resolves.toHaveProperty('token');
  });

  it("refuses a token that names another user's account", async () => {
    const owner = await registered();
    const keyring = createTokenKeyring(api.deps.config.ownerAuth.jwt, 0);
    const otherToken = keyring.issue({ type: 'email-verified', userId: new Types.ObjectId().toHexString(), jti: 'e2' }).token;
    const res = await post(
      api.baseUrl,
      '/api/svd/register',
      { userId: owner.userId, pmcHex: newOwner().pmcHex },
      { authorization: `Bearer ${otherToken}` },
    );
    expect(res.status).toBe(403);
  });

  it('replaces a key with a session of the old key; the old key and its sessions stop working', async () => {
    const owner = await registered();
    const next = newOwner();
    const oldSession = await client.login(owner.userId, owner.privHex);
    const replaced = await client.register(next.pmcHex, oldSession.token);
    expect(replaced).toMatchObject({ userId: owner.userId, replaced: true });
    expect(await errorCode(client.login(owner.userId, owner.privHex))).toBe('SVD_INVALID_SIGNATURE');
    const stale = await session(api.baseUrl, oldSession.token);
    expect([stale.status, stale.body.error.details.reason]).toEqual([401, 'key_not_current']);
    await expect(client.login(owner.userId, next.privHex)).resolves.toHaveProperty('token');
  });

  it('an admin replaces a key only with replace:true', async () => {
    const owner = await registered();
    const next = newOwner();
    const res = await adminRegister({ ...next, userId: owner.userId }, { replace: true });
    expect(res.status).toBe(201);
    expect(res.body.replaced).toBe(true);
    await expect(client.login(owner.userId, next.privHex)).resolves.toHaveProperty('token');
  });

  it('refuses a revoked key at login, and its sessions stop at once', async () => {
    const owner = await registered();
    const live = await client.login(owner.userId, owner.privHex);
    const revoked = await post(api.baseUrl, '/api/svd/revoke', { userId: owner.userId }, { 'x-api-key': api.deps.config.auth.apiKey });
    expect(revoked.body).toEqual({ revoked: true });
    expect(await errorCode(client.login(owner.userId, owner.privHex))).toBe('SVD_INVALID_SIGNATURE');
    expect((await session(api.baseUrl, live.token)).status).toBe(401);
    const metrics = await api.deps.metrics.registry.getSingleMetricAsString('patchproof_svd_events_total');
    expect(metrics).toMatch(/event_type="refused"/);
  });

  it("after a revocation the account's verified email can register a new key (recovery)", async () => {
    const owner = await registered();
    await post(api.baseUrl, '/api/svd/revoke', { userId: owner.userId }, { 'x-api-key': api.deps.config.auth.apiKey });
    const next = newOwner();
    const emailToken = createTokenKeyring(api.deps.config.ownerAuth.jwt, 0).issue({
      type: 'email-verified',
      userId: owner.userId,
      jti: 'r',
    }).token;
    await expect(client.register(next.pmcHex, emailToken)).resolves.toMatchObject({ userId: owner.userId, replaced: true });
    await expect(client.login(owner.userId, next.privHex)).resolves.toHaveProperty('token');
    expect(await errorCode(client.login(owner.userId, owner.privHex))).toBe('SVD_INVALID_SIGNATURE');
  });

  it('registers once when twenty first registrations race', async () => {
    const userId = new Types.ObjectId().toHexString();
    const candidates = Array.from({ length: 20 }, () => ({ ...newOwner(), userId }));
    const results = await Promise.all(candidates.map((c) => adminRegister(c)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(19);
    const winner = candidates[results.findIndex((r) => r.status === 201)]!;
    await expect(client.login(userId, winner.privHex)).resolves.toHaveProperty('token');
  });
});

describe('JWT keyring', () => {
  const sign = (payload: Record<string, unknown>, secret: string, kid: string, options: jwt.SignOptions = {}) =>
    jwt.sign(payload, secret, { algorithm: 'HS256', keyid: kid, expiresIn: 300, ...options });

  async function liveSession(): Promise<{ owner: Owner; token: string; claims: Record<string, unknown> }> {
    const owner = await registered();
    const { token } = await client.login(owner.userId, owner.privHex);
    return { owner, token, claims: jwt.decode(token) as Record<string, unknown> };
  }

  it('refuses an email-verified token where an SVD session is needed (token-type confusion)', async () => {
    const { owner } = await liveSession();
    const keyring = createTokenKeyring(api.deps.config.ownerAuth.jwt, 0);
    const emailToken = keyring.issue({ type: 'email-verified', userId: owner.userId, jti: 'x' }).token;
    const res = await session(api.baseUrl, emailToken);
    expect([res.status, res.body.error.details.reason]).toEqual([401, 'wrong_type']);
  });

  it('refuses an unknown kid, a wrong audience or issuer, and alg none', async () => {
    const { claims } = await liveSession();
    const { iat: _iat, exp: _exp, nbf: _nbf, ...rest } = claims;
    const reasons = [];
    for (const token of [
      sign(rest, KEY_NEW, 'k-unknown'),
      sign({ ...rest, aud: 'someone-else' }, KEY_NEW, 'k-new'),
      sign({ ...rest, iss: 'someone-else' }, KEY_NEW, 'k-new'),
      `${Buffer.from('{"alg":"none","typ":"JWT","kid":"k-new"}').toString('base64url')}.${Buffer.from(JSON.stringify(rest)).toString('base64url')}.`,
    ]) {
      const res = await session(api.baseUrl, token);
      expect(res.status).toBe(401);
      reasons.push(res.body.error.details.reason);
    }
    expect(reasons).toEqual(['unknown_kid', 'invalid', 'invalid', 'algorithm']);
  });

  it('verifies tokens of a non-active kid during the overlap, and refuses them once the kid is retired', async () => {
    const owner = await registered();
    const oldActive = await appWith((c) => ({ ...c, ownerAuth: { ...c.ownerAuth, jwt: { ...c.ownerAuth.jwt, activeKid: 'k-old' } } }));
    const oldToken = (await new SvdClient({ baseUrl: oldActive }).login(owner.userId, owner.privHex)).token;
    expect(jwt.decode(oldToken, { complete: true })?.header.kid).toBe('k-old');
    expect((await session(api.baseUrl, oldToken)).status).toBe(200);
    const retired = await appWith((c) => ({
      ...c,
      ownerAuth: { ...c.ownerAuth, jwt: { ...c.ownerAuth.jwt, keys: { 'k-new': KEY_NEW } } },
    }));
    const res = await session(retired, oldToken);
    expect([res.status, res.body.error.details.reason]).toEqual([401, 'unknown_kid']);
  });

  it('refuses an expired session', async () => {
    const { token } = await liveSession();
    const shortLived = await appWith((c) => ({ ...c, ownerAuth: { ...c.ownerAuth, svd: { ...c.ownerAuth.svd, clockSkewSec: 0 } } }));
    const claims = jwt.decode(token) as Record<string, unknown>;
    const { iat: _iat, nbf: _nbf, exp: _exp, ...rest } = claims;
    const expired = jwt.sign({ ...rest, exp: Math.floor(Date.now() / 1000) - 5 }, KEY_NEW, { algorithm: 'HS256', keyid: 'k-new' });
    const res = await session(shortLived, expired);
    expect([res.status, res.body.error.details.reason]).toEqual([401, 'expired']);
  });
});

describe('SVD operations', () => {
  it('the canary needs the API key, runs the self-test and returns a metrics snapshot', async () => {
    const owner = await registered();
    await client.login(owner.userId, owner.privHex);
    expect((await get(api.baseUrl, '/api/svd/canary')).status).toBe(401);
    const res = await get(api.baseUrl, '/api/svd/canary', { 'x-api-key': api.deps.config.auth.apiKey });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, kid: 'k-new', secretMode: 'local' });
    const completes = res.body.metrics.events.filter((e) => e.eventType === 'complete').reduce((total, e) => total + e.count, 0);
    expect(completes).toBeGreaterThan(0);
    expect(res.body.metrics.challengeAge.count).toBe(completes);
  });

  it('observes the challenge age at completion and counts logins', async () => {
    const owner = await registered();
    const before = (await api.deps.metrics.svdChallengeAge.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    await client.login(owner.userId, owner.privHex);
    const after = (await api.deps.metrics.svdChallengeAge.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    expect(after).toBe(before + 1);
    expect(await api.deps.metrics.registry.getSingleMetricAsString('patchproof_owner_logins_total')).toMatch(
      /method="svd",outcome="success"[^\n]* [1-9]/,
    );
  });

  it('writes no key, challenge, signature or token into the logs', async () => {
    const owner = await registered();
    const { M } = await client.begin(owner.userId);
    const signature = SvdClient.signChallenge(owner.privHex, M);
    const { token } = await client.complete(owner.userId, M, signature);
    await post(api.baseUrl, '/api/svd/complete', { userId: owner.userId, M, signatureHex: signature });
    const logs = api.deps.logs.text();
    expect(logs).toContain('svd login completed');
    for (const secret of [owner.pmcHex, owner.privHex, M, signature, token, parseChallenge(M)!.digestHex])
      expect(logs).not.toContain(secret);
  });

  it('limits SVD per user and per IP with 429 and Retry-After', async () => {
    const limited = await appWith((c) => ({
      ...c,
      ownerAuth: { ...c.ownerAuth, rateLimits: { ...c.ownerAuth.rateLimits, svd: { windowMs: 60_000, maxPerIp: 6, maxPerUser: 2 } } },
    }));
    // The limiters' counters live in Redis, shared with the other apps of this file: start them from zero.
    const counters = await api.deps.redis.keys('rl:svd-*');
    if (counters.length > 0) await api.deps.redis.del(...counters);
    const userId = new Types.ObjectId().toHexString();
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(limited, '/api/svd/begin', { userId })).status);
    expect(statuses).toEqual([200, 200, 429]);
    // Rotating the user id does not escape the per-IP limit.
    const rotated = [];
    for (let i = 0; i < 5; i++) rotated.push(await post(limited, '/api/svd/begin', { userId: new Types.ObjectId().toHexString() }));
    const refused = rotated.find((r) => r.status === 429);
    expect(refused?.body.error.code).toBe('RATE_LIMITED');
    expect(Number(refused?.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it("counts a request in each of the route's limiters at once, and answers one 429 when several refuse it", async () => {
    const limited = await appWith((c) => ({
      ...c,
      ownerAuth: { ...c.ownerAuth, rateLimits: { ...c.ownerAuth.rateLimits, svd: { windowMs: 60_000, maxPerIp: 2, maxPerUser: 2 } } },
    }));
    const counters = await api.deps.redis.keys('rl:svd-*');
    if (counters.length > 0) await api.deps.redis.del(...counters);
    const userId = new Types.ObjectId().toHexString();
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await post(limited, '/api/svd/begin', { userId }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    // Both limiters refused the third request; it got one well-formed answer.
    expect(answers[2]!.body.error.code).toBe('RATE_LIMITED');
    expect(answers[0]!.headers.get('ratelimit')).toMatch(/^limit=2, remaining=1, reset=\d+$/);
    // Each limiter counted all three, the refused one included.
    const [ipCounter] = await api.deps.redis.keys('rl:svd-ip:*');
    expect(await api.deps.redis.get(ipCounter!)).toBe('3');
    expect(await api.deps.redis.get(`rl:svd-user:id:${userId}`)).toBe('3');
  });

  it('derives the session secret through the KMS in KMS mode', async () => {
    const kms = createDevKms({
      dataDir: path.join(mkdtempSync(path.join(tmpdir(), 'svd-kms-')), 'keys'),
      apiKey: api.deps.config.kms.apiKey,
      keys: configuredKeyNames(api.deps.config),
    });
    const derivations: string[] = [];
    const front = express();
    front.use((req, _res, next) => {
      if (req.path === '/svd/derive-secret') derivations.push(req.method);
      next();
    });
    front.use(kms.app);
    const kmsServer = await listen(front);
    extraServers.push(kmsServer);
    const kmsMode = await appWith((c) => ({
      ...c,
      kms: { ...c.kms, signUrl: kmsServer.baseUrl },
      ownerAuth: { ...c.ownerAuth, svd: { ...c.ownerAuth.svd, mode: 'kms' } },
    }));
    const owner = await registered();
    const login = await new SvdClient({ baseUrl: kmsMode }).login(owner.userId, owner.privHex);
    expect(derivations).toEqual(['POST']);
    const proof = (jwt.decode(login.token) as { cnf: { svd_proof: string; msha256: string } }).cnf;
    expect(proof.svd_proof).toMatch(/^[0-9a-f]{64}$/);
    expect(proof.msha256).toBe((jwt.decode(login.token) as { jti: string }).jti);
  });
});

describe('when Redis is lost at runtime', () => {
  it('SVD endpoints answer 503 (fail closed) while public routes keep answering', async () => {
    const port = await freePort();
    const redis = await startRedis({
      bin: testEnv('redisServer'),
      port,
      logFile: path.join(testEnv('scratchDir'), 'logs', `svd-redis-${randomBytes(3).toString('hex')}.log`),
    });
    const deps = await connectTestDeps('api', { REDIS_URL: `redis://127.0.0.1:${port}/0`, SVD_RATE_MAX_PER_IP: '1000' });
    const server = await listen(createApp(deps));
    try {
      const owner = newOwner();
      expect((await post(server.baseUrl, '/api/svd/begin', { userId: owner.userId })).status).toBe(200);
      const M = String((await post(server.baseUrl, '/api/svd/begin', { userId: owner.userId })).body.M);
      await redis.stop();
      const begin = await post(server.baseUrl, '/api/svd/begin', { userId: owner.userId });
      expect([begin.status, begin.body.error.code]).toEqual([503, 'DEPENDENCY_UNAVAILABLE']);
      const complete = await post(server.baseUrl, '/api/svd/complete', {
        userId: owner.userId,
        M,
        signatureHex: SvdClient.signChallenge(owner.privHex, M),
      });
      expect(complete.status).toBe(503);
      expect((await get(server.baseUrl, '/health')).status).toBe(200);
      expect((await get(server.baseUrl, '/api/svd/kid')).status).toBe(200);
    } finally {
      await server.close();
      await deps.close().catch(() => undefined);
      await redis.stop().catch(() => undefined);
    }
  });
});

// Keeps the digest helper honest: the challenge id is sha256(M).
it('uses sha256(M) as the challenge id', async () => {
  const owner = await registered();
  const { M, challengeId } = await client.begin(owner.userId);
  expect(challengeId).toBe(createHash('sha256').update(Buffer.from(M, 'hex')).digest('hex'));
});

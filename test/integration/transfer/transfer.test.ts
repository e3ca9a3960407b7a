import { createApp } from '../../../api/app';
import { verdictCacheFromConfig } from '../../../api/verdictCache';
import { startChainFollower } from '../../../src/chainFollower/launch';
import { anchorTxModel } from '../../../src/chainFollower/models';
import { waitFor } from '../../support/workerProcesses';
import { chainServiceHeaderSource } from '../../../src/chain/headerSources';
import { chainClientsFromConfig } from '../../../src/chain/clients';
import { checkProofBundle, type ProofBundle } from '../../../src/registration/proofBundle';
import { patchModel } from '../../../src/registration/models';
import { signOwnerMessage, type OwnerMessage } from '../../../src/sdk/ownerSigning';
import { transferModel } from '../../../src/transfer/models';
import { unlockableContentModel } from '../../../src/unlock/content';
import { utxoModel } from '../../../src/pool/models';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import {
  apiClient,
  bindAddressBody,
  fundAndSyncPool,
  loggedInOwner,
  newNonce,
  registrationBody,
  type TestOwner,
} from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

interface Verification {
  status: string;
  reason?: string;
  ownership: {
    currentOwner: string;
    chain: { kind: string; seq: number; owner: string; txid: string; anchor?: { confirmations?: number } }[];
  };
}

describe('ownership transfer through the API, anchored on the chain simulator', () => {
  let stack: PoolStack;
  let server: Listening;
  let api: ReturnType<typeof apiClient>;
  let alice: TestOwner;
  let bob: TestOwner;
  let carol: TestOwner;
  const UID = 'PP-XFER-1';

  beforeAll(async () => {
    stack = await startPoolStack(
      {
        FEE_PER_KB: '100',
        ANCHOR_CONFIRMATIONS: '1',
        ANCHOR_BATCH_MAX_WAIT_SECONDS: '1',
        PUBLIC_API_MAX: '10000',
        CHAIN_FOLLOWER_POLL_SECONDS: '1',
      },
      { blockIntervalMs: 300 },
    );
    server = await listen(createApp(stack.deps));
    api = apiClient(server.baseUrl, stack.deps.config.auth.apiKey);
    await fundAndSyncPool(stack, 6);
    alice = await loggedInOwner(server.baseUrl, stack.deps.config.auth.apiKey);
    bob = await loggedInOwner(server.baseUrl, stack.deps.config.auth.apiKey);
    const accepted = await api.adminPost('/v1/patches', registrationBody(UID, alice.address));
    expect(accepted.status).toBe(202);
    expect(await api.waitDone(accepted.body.statusUrl as string)).toMatchObject({ state: 'completed', status: 'anchored' });
  });
  afterAll(async () => {
    await server?.close();
    await stack?.close();
  });

  const verify = async (uid = UID) => (await api.get(`/v1/patches/${uid}/verify`)).body as unknown as Verification;
  const headOf = async (uid = UID) => (await patchModel(stack.deps.mongo).findById(uid).lean())!.head!.txid;
  const transferBody = (signer: TestOwner, message: Extract<OwnerMessage, { purpose: 'patchproof.transfer' }>) => {
    const { pubKeyHex, signatureDerHex } = signOwnerMessage(signer.privHex, message);
    const { headTxid, newOwner, nonce, expiresAt } = message;
    return { newOwner, headTxid, nonce, expiresAt, ownerPubKey: pubKeyHex, ownerSignature: signatureDerHex };
  };
  const message = async (to: TestOwner, overrides: Partial<Extract<OwnerMessage, { purpose: 'patchproof.transfer' }>> = {}) => ({
    purpose: 'patchproof.transfer' as const,
    uid: UID,
    headTxid: await headOf(),
    newOwner: to.address,
    nonce: newNonce(),
    expiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
    ...overrides,
  });
  const transfer = (body: unknown, token: string, uid = UID) =>
    api.post(`/v1/patches/${uid}/transfers`, body, { authorization: `Bearer ${token}` });

  it('moves ownership along an anchored chain, and verification stays authentic with a chain of two', async () => {
    // Verified through an API that keeps verdicts for 10 minutes: only the transfer's announcement can change its answer.
    const verdicts = verdictCacheFromConfig({
      config: { verification: { cacheTtlMs: 600_000, cacheMaxEntries: 100 } },
      redis: stack.deps.redis,
      logger: stack.deps.logger,
    });
    const caching = await listen(createApp({ ...stack.deps, verdicts }));
    const cachedVerify = async () =>
      (await apiClient(caching.baseUrl, '').get(`/v1/patches/${UID}/verify`)).body as unknown as Verification;
    try {
      // Verdicts are kept once they rest on the chain follower's proofs alone.
      await startChainFollower(stack.deps.temporal, stack.deps.config);
      const registrationTxid = await headOf();
      await waitFor('the registration proven by the follower', async () =>
        (await anchorTxModel(stack.deps.mongo).findById(registrationTxid).lean())?.state === 'proven' ? true : undefined,
      );
      expect((await cachedVerify()).status).toBe('authentic');
      expect(verdicts.size).toBe(1);
      await movesOwnership(cachedVerify);
    } finally {
      await caching.close();
      verdicts.stop();
    }
  });

  async function movesOwnership(verify: () => Promise<Verification>): Promise<void> {
    const before = await verify();
    expect(before).toMatchObject({ status: 'authentic', ownership: { currentOwner: alice.address, chain: [{ kind: 'registration' }] } });
    const registrationTxid = before.ownership.chain[0]!.txid;

    const accepted = await transfer(transferBody(alice, await message(bob)), alice.token);
    expect(accepted.status).toBe(202);
    const transferId = accepted.body.transferId as string;
    expect(transferId).toBe(`transfer-${UID}-${registrationTxid}`);
    const done = await api.waitDone(accepted.body.statusUrl as string);
    expect(done).toMatchObject({ state: 'completed', status: 'anchored', seq: 1, from: alice.address, to: bob.address });
    await recordHistoryIfAsked(stack.deps.temporal, transferId, 'transfer-anchored');

    const after = await verify();
    expect(after).toMatchObject({
      status: 'authentic',
      ownership: {
        currentOwner: bob.address,
        chain: [
          { kind: 'registration', seq: 0, owner: alice.address, txid: registrationTxid },
          { kind: 'transfer', seq: 1, owner: bob.address, txid: done.txid },
        ],
      },
    });
    expect(after.ownership.chain[1]!.anchor!.confirmations).toBeGreaterThanOrEqual(1);
    expect(await headOf()).toBe(done.txid);

    // The proof bundle carries the chain and checks with chain lookups only: the txs (format 1) or the blocks'
    // headers (format 2, once the follower has proven them).
    const bundleCheckDeps = () => {
      const { woc } = chainClientsFromConfig(stack.deps.config);
      return { woc, headers: chainServiceHeaderSource(woc), requiredConfirmations: 1 };
    };
    const bundle = (await api.get(`/v1/patches/${UID}/proof`)).body as unknown as ProofBundle;
    expect(bundle.transfers).toHaveLength(1);
    const verdict = await checkProofBundle(bundle, bundleCheckDeps());
    expect(verdict).toMatchObject({ status: 'authentic', currentOwner: bob.address, links: [{ seq: 1 }] });
    // A bundle whose transfer names another new owner no longer verifies.
    const forged = { ...bundle, transfers: [{ ...bundle.transfers![0]!, record: { ...bundle.transfers![0]!.record, to: alice.address } }] };
    expect(await checkProofBundle(forged, bundleCheckDeps())).toMatchObject({
      status: 'invalid',
    });
  }

  it('refuses the old owner, a reused nonce, a stale head, and a tampered stored transfer', async () => {
    // Alice no longer owns it: her key is not the owner's.
    const byAlice = await transfer(transferBody(alice, await message(alice)), alice.token);
    expect(byAlice).toMatchObject({ status: 403, body: { error: { code: 'SIGNATURE_INVALID', details: { reason: 'not_the_owner' } } } });
    // A nonce is single-use, even in a new message for a new head.
    const used = (await transferModel(stack.deps.mongo).findOne({ uid: UID }).lean())!.record.authorization as { nonce: string };
    const replay = await transfer(transferBody(bob, await message(alice, { nonce: used.nonce })), bob.token);
    expect(replay).toMatchObject({ status: 409, body: { error: { code: 'NONCE_REPLAYED' } } });
    // A message signed for the previous head.
    const stale = await transfer(transferBody(bob, await message(alice, { headTxid: 'ab'.repeat(32) })), bob.token);
    expect(stale).toMatchObject({
      status: 409,
      body: { error: { code: 'CONFLICT', details: { reason: 'stale_head', headTxid: await headOf() } } },
    });

    // Whoever edits a stored transfer breaks verification.
    const transfers = transferModel(stack.deps.mongo);
    const original = (await transfers.findOne({ uid: UID }).lean())!;
    try {
      await transfers.updateOne({ _id: original._id }, { $set: { 'record.to': alice.address } });
      expect(await verify()).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/^transfer 1: /) });
    } finally {
      await transfers.replaceOne({ _id: original._id }, original);
    }
    expect((await verify()).status).toBe('authentic');
  });

  it("binds an address only with its own key's signature naming the account, once per nonce", async () => {
    const bind = (body: unknown, token: string) => api.post('/v1/owner/addresses', body, { authorization: `Bearer ${token}` });
    // Bob cannot bind Alice's address with his key, nor take it over with hers once it is bound to her.
    expect(await bind(bindAddressBody({ address: alice.address, userId: bob.userId }, bob.privHex), bob.token)).toMatchObject({
      status: 403,
      body: { error: { code: 'SIGNATURE_INVALID', details: { reason: 'not_the_owner' } } },
    });
    expect(await bind(bindAddressBody({ address: alice.address, userId: bob.userId }, alice.privHex), bob.token)).toMatchObject({
      status: 409,
      body: { error: { code: 'CONFLICT', details: { reason: 'bound_to_another_account' } } },
    });
    // A message naming Alice's account, sent under Bob's session, does not verify as his.
    expect((await bind(bindAddressBody(alice), bob.token)).body.error).toMatchObject({ code: 'SIGNATURE_INVALID' });
    const again = bindAddressBody(alice);
    expect(await bind(again, alice.token)).toMatchObject({ status: 201, body: { address: alice.address, userId: alice.userId } });
    expect(await bind(again, alice.token)).toMatchObject({ status: 409, body: { error: { code: 'NONCE_REPLAYED' } } });
  });

  it('lets only one of two racing transfers of the same head proceed', async () => {
    carol = await loggedInOwner(server.baseUrl, stack.deps.config.auth.apiKey);
    const answers = await Promise.all([
      transfer(transferBody(bob, await message(carol)), bob.token),
      transfer(transferBody(bob, await message(alice)), bob.token),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    const winner = answers.find((a) => a.status === 202)!;
    await api.waitDone(winner.body.statusUrl as string);
    expect(await transferModel(stack.deps.mongo).countDocuments({ uid: UID, status: 'anchored' })).toBe(2);
    expect((await verify()).ownership.chain).toHaveLength(3);
    expect(await utxoModel(stack.deps.mongo).countDocuments({ status: 'reserved' })).toBe(0);
  });

  it('answers bad input with a 4xx envelope and starts nothing', async () => {
    const current = await verify();
    const holder = [alice, bob, carol].find((o) => o.address === current.ownership.currentOwner)!;
    // Whoever won the race above holds the patch now; the messages transfer it to someone else.
    const target = [alice, bob, carol].find((o) => o !== holder)!;
    const good = transferBody(holder, await message(target));
    const started = await transferModel(stack.deps.mongo).countDocuments({ uid: UID });
    const cases: [unknown, string | undefined, number, string][] = [
      [good, undefined, 401, 'UNAUTHORIZED'],
      [good, 'not-a-token', 401, 'UNAUTHORIZED'],
      [{ ...good, extra: 1 }, holder.token, 400, 'VALIDATION_FAILED'],
      [{ ...good, headTxid: 42 }, holder.token, 400, 'VALIDATION_FAILED'],
      [{ ...good, headTxid: 'zz'.repeat(32) }, holder.token, 400, 'VALIDATION_FAILED'],
      [{ ...good, newOwner: { $ne: null } }, holder.token, 400, 'NOSQL_OPERATOR_REJECTED'],
      [{ ...good, newOwner: '1BoatSLRHtKNngkdXEeobR76b53LETtpyT' }, holder.token, 400, 'VALIDATION_FAILED'],
      [{ ...good, ownerSignature: 'deadbeef' }, holder.token, 400, 'VALIDATION_FAILED'],
      [{ ...good, ownerPubKey: '02' + '00'.repeat(32) }, holder.token, 403, 'SIGNATURE_INVALID'],
      [
        transferBody(holder, await message(target, { expiresAt: new Date(Date.now() - 1000).toISOString() })),
        holder.token,
        400,
        'SIGNATURE_EXPIRED',
      ],
      [
        transferBody(holder, await message(target, { expiresAt: new Date(Date.now() + 86_400_000).toISOString() })),
        holder.token,
        400,
        'SIGNATURE_EXPIRED',
      ],
      // Signed by the owner's key, but over another message than the one sent.
      [{ ...good, nonce: newNonce() }, holder.token, 403, 'SIGNATURE_INVALID'],
      // Someone else's session, with the owner's valid signature: the address is bound to the owner's account.
      [good, (holder === bob ? carol : bob).token, 403, 'FORBIDDEN'],
    ];
    for (const [body, token, status, code] of cases) {
      const answer = token === undefined ? await api.post(`/v1/patches/${UID}/transfers`, body) : await transfer(body, token);
      expect({ status: answer.status, code: answer.body.error?.code }).toEqual({ status, code });
    }
    expect((await api.post('/v1/patches/NOPE-1/transfers', good, { authorization: `Bearer ${holder.token}` })).status).toBe(404);
    expect((await api.post(`/v1/patches/${UID}/transfers`, '{"newOwner":', { authorization: `Bearer ${holder.token}` })).status).toBe(400);
    expect((await api.get('/v1/transfers/not-a-transfer')).status).toBe(400);
    expect((await api.get(`/v1/transfers/transfer-${UID}-${'00'.repeat(32)}`)).status).toBe(404);
    expect(await transferModel(stack.deps.mongo).countDocuments({ uid: UID })).toBe(started);
  });

  describe('unlockable content', () => {
    const SECRET_TEXT = 'care card: hand wash cold, code 4471';
    const LOCKED = 'PP-XFER-LOCKED';
    const unlock = async (signer: TestOwner, session: TestOwner = signer) => {
      const issued = await api.post(`/v1/patches/${LOCKED}/unlock/challenge`, {}, { authorization: `Bearer ${session.token}` });
      if (issued.status !== 201) return { issued, answer: issued };
      const { challenge, headTxid } = issued.body as { challenge: string; headTxid: string };
      const signed = signOwnerMessage(signer.privHex, { purpose: 'patchproof.unlock', uid: LOCKED, headTxid, challenge });
      const body = { challenge, ownerPubKey: signed.pubKeyHex, ownerSignature: signed.signatureDerHex };
      return { issued, body, answer: await api.post(`/v1/patches/${LOCKED}/unlock`, body, { authorization: `Bearer ${session.token}` }) };
    };

    beforeAll(async () => {
      const accepted = await api.adminPost('/v1/patches', {
        ...registrationBody(LOCKED, alice.address),
        unlockable: { content: SECRET_TEXT },
      });
      expect(accepted.status).toBe(202);
      expect(await api.waitDone(accepted.body.statusUrl as string)).toMatchObject({ status: 'anchored' });
    });

    it('is stored encrypted, kept out of workflow history, and served to the owner for a fresh signed challenge only', async () => {
      const history = JSON.stringify(await stack.deps.temporal.workflow.getHandle(`registration-${LOCKED}`).fetchHistory());
      expect(history).not.toContain('hand wash');
      const stored = JSON.stringify(await unlockableContentModel(stack.deps.mongo).find({ uid: LOCKED }).lean());
      expect(stored).not.toContain('hand wash');
      expect(stored).toContain('ciphertextB64');

      const first = await unlock(alice);
      expect(first.answer).toMatchObject({ status: 200, body: { uid: LOCKED, content: SECRET_TEXT } });
      // The same signed answer again: the challenge is single-use.
      const replay = await api.post(`/v1/patches/${LOCKED}/unlock`, first.body, { authorization: `Bearer ${alice.token}` });
      expect(replay).toMatchObject({ status: 409, body: { error: { code: 'NONCE_REPLAYED' } } });
      // A challenge nobody issued.
      const unknown = await api.post(
        `/v1/patches/${LOCKED}/unlock`,
        { ...first.body, challenge: 'ab'.repeat(32) },
        { authorization: `Bearer ${alice.token}` },
      );
      expect(unknown).toMatchObject({ status: 400, body: { error: { code: 'SIGNATURE_EXPIRED' } } });
      // Someone else's key, or someone else's session.
      expect((await unlock(bob, alice)).answer).toMatchObject({ status: 403, body: { error: { code: 'SIGNATURE_INVALID' } } });
      expect((await unlock(alice, bob)).answer).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
      expect((await api.post(`/v1/patches/${LOCKED}/unlock/challenge`, {})).status).toBe(401);
      expect(
        (await api.post(`/v1/patches/${LOCKED}/unlock`, { ...first.body, extra: 1 }, { authorization: `Bearer ${alice.token}` })).status,
      ).toBe(400);
    });

    it('follows the patch to its new owner', async () => {
      const moved = await transfer(
        transferBody(alice, await message(bob, { uid: LOCKED, headTxid: await headOf(LOCKED) })),
        alice.token,
        LOCKED,
      );
      expect(moved.status).toBe(202);
      expect(await api.waitDone(moved.body.statusUrl as string)).toMatchObject({ status: 'anchored' });
      expect((await unlock(alice)).answer.status).toBe(403);
      expect((await unlock(bob)).answer).toMatchObject({ status: 200, body: { content: SECRET_TEXT } });
    });
  });
});

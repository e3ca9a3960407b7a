import { PrivateKey } from '@bsv/sdk';
import { createApp } from '../../../api/app';
import { signOwnerMessage } from '../../../src/sdk/ownerSigning';
import { transferModel } from '../../../src/transfer/models';
import { recordHistoryIfAsked } from '../../support/histories';
import { listen, type Listening } from '../../support/http';
import { apiClient, fundAndSyncPool, newNonce, registrationBody } from '../../support/patchApi';
import { startPoolStack, type PoolStack } from '../../support/poolStack';

describe('point-of-sale claim: customer intent, merchant approval, transfer', () => {
  let stack: PoolStack;
  let server: Listening;
  let api: ReturnType<typeof apiClient>;
  const merchant = PrivateKey.fromRandom();
  const UID = 'PP-POS-1';

  beforeAll(async () => {
    stack = await startPoolStack(
      {
        FEE_PER_KB: '100',
        ANCHOR_CONFIRMATIONS: '1',
        ANCHOR_BATCH_MAX_WAIT_SECONDS: '1',
        PUBLIC_API_MAX: '10000',
        CLAIM_INTENT_TTL_MS: '60000',
      },
      { blockIntervalMs: 300 },
    );
    server = await listen(createApp(stack.deps));
    api = apiClient(server.baseUrl, stack.deps.config.auth.apiKey);
    await fundAndSyncPool(stack, 4);
    const accepted = await api.adminPost('/v1/patches', registrationBody(UID, merchant.toPublicKey().toAddress('testnet')));
    expect(await api.waitDone(accepted.body.statusUrl as string)).toMatchObject({ status: 'anchored' });
  });
  afterAll(async () => {
    await server?.close();
    await stack?.close();
  });

  const intent = (customer: PrivateKey, overrides: { nonce?: string; expiresAt?: string; uid?: string; signer?: PrivateKey } = {}) => {
    const address = customer.toPublicKey().toAddress('testnet');
    const message = {
      purpose: 'patchproof.claim' as const,
      uid: overrides.uid ?? UID,
      address,
      nonce: overrides.nonce ?? newNonce(),
      expiresAt: overrides.expiresAt ?? new Date(Date.now() + 30_000).toISOString(),
    };
    const signed = signOwnerMessage((overrides.signer ?? customer).toHex(), message);
    return {
      uid: message.uid,
      customer: { address, pubKey: signed.pubKeyHex },
      nonce: message.nonce,
      expiresAt: message.expiresAt,
      signature: signed.signatureDerHex,
    };
  };
  const waitClaim = async (statusUrl: string, until: (status: string) => boolean) => {
    for (let i = 0; i < 600; i++) {
      const state = (await api.get(statusUrl)).body as { status: string; txid?: string; error?: string };
      if (until(state.status)) return state;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`claim ${statusUrl} did not settle`);
  };

  it('transfers the patch to the customer once a merchant approves, and verification stays authentic', async () => {
    const customer = PrivateKey.fromRandom();
    const created = await api.post('/v1/pos/claim-intents', intent(customer));
    expect(created).toMatchObject({ status: 201, body: { status: 'pending' } });
    const statusUrl = created.body.statusUrl as string;
    expect((await api.get(statusUrl)).body).toMatchObject({ status: 'pending', customer: customer.toPublicKey().toAddress('testnet') });

    const approved = await api.adminPost(`${statusUrl}/approve`, { approvedBy: 'store-12' });
    expect(approved).toMatchObject({ status: 200, body: { status: 'approved', approvedBy: 'store-12' } });
    // Approving twice is a conflict, not a second transfer.
    expect((await api.adminPost(`${statusUrl}/approve`, { approvedBy: 'store-12' })).status).toBe(409);
    const done = await waitClaim(statusUrl, (s) => s !== 'approved' && s !== 'pending');
    expect(done).toMatchObject({ status: 'completed', txid: expect.stringMatching(/^[0-9a-f]{64}$/) });
    await recordHistoryIfAsked(stack.deps.temporal, created.body.claimId as string, 'claim-completed');

    const verification = (await api.get(`/v1/patches/${UID}/verify`)).body;
    expect(verification).toMatchObject({
      status: 'authentic',
      ownership: {
        currentOwner: customer.toPublicKey().toAddress('testnet'),
        chain: [{ kind: 'registration' }, { kind: 'transfer', txid: done.txid }],
      },
    });
    const transfer = (await transferModel(stack.deps.mongo).findOne({ uid: UID }).lean())!;
    expect(transfer.record.authorization).toMatchObject({ kind: 'pos-claim', approvedBy: 'store-12', claimId: created.body.claimId });
  });

  it('expires an intent nobody approved, on the workflow timer', async () => {
    const created = await api.post(
      '/v1/pos/claim-intents',
      intent(PrivateKey.fromRandom(), { expiresAt: new Date(Date.now() + 1500).toISOString() }),
    );
    expect(created.status).toBe(201);
    const statusUrl = created.body.statusUrl as string;
    expect(await waitClaim(statusUrl, (s) => s !== 'pending')).toMatchObject({ status: 'expired' });
    expect(await api.adminPost(`${statusUrl}/approve`, { approvedBy: 'late' })).toMatchObject({
      status: 409,
      body: { error: { code: 'CONFLICT' } },
    });
    await recordHistoryIfAsked(stack.deps.temporal, created.body.claimId as string, 'claim-expired');
  });

  it('answers bad input with a 4xx envelope and starts nothing', async () => {
    const customer = PrivateKey.fromRandom();
    const good = intent(customer);
    const used = intent(customer);
    expect((await api.post('/v1/pos/claim-intents', used)).status).toBe(201);
    const cases: [unknown, number, string][] = [
      [{ ...good, extra: true }, 400, 'VALIDATION_FAILED'],
      [{ ...good, uid: 7 }, 400, 'VALIDATION_FAILED'],
      [{ ...good, customer: { ...good.customer, address: { $gt: '' } } }, 400, 'NOSQL_OPERATOR_REJECTED'],
      [{ ...good, customer: { ...good.customer, pubKey: 'xyz' } }, 400, 'VALIDATION_FAILED'],
      [intent(customer, { signer: PrivateKey.fromRandom() }), 403, 'SIGNATURE_INVALID'],
      [{ ...good, nonce: newNonce() }, 403, 'SIGNATURE_INVALID'],
      [intent(customer, { expiresAt: new Date(Date.now() - 1).toISOString() }), 400, 'SIGNATURE_EXPIRED'],
      [intent(customer, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() }), 400, 'SIGNATURE_EXPIRED'],
      [used, 409, 'NONCE_REPLAYED'],
      [intent(customer, { uid: 'PP-NOBODY' }), 404, 'NOT_FOUND'],
    ];
    for (const [body, status, code] of cases) {
      const answer = await api.post('/v1/pos/claim-intents', body);
      expect({ status: answer.status, code: answer.body.error?.code }).toEqual({ status, code });
    }
    expect((await api.post(`/v1/pos/claim-intents/claim-${UID}-${newNonce()}/approve`, { approvedBy: 'x' })).status).toBe(401);
    expect((await api.adminPost(`/v1/pos/claim-intents/claim-${UID}-${newNonce()}/approve`, { approvedBy: 'x' })).status).toBe(404);
    expect((await api.adminPost(`/v1/pos/claim-intents/not-a-claim/approve`, { approvedBy: 'x' })).status).toBe(400);
    expect((await api.get(`/v1/pos/claim-intents/claim-${UID}-${newNonce()}`)).status).toBe(404);
  });
});

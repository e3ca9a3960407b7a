import { randomBytes } from 'node:crypto';
import { PrivateKey } from '@bsv/sdk';
import { Types } from 'mongoose';
import { startSync, waitForPoolOperation } from '../../src/pool/launch';
import { signOwnerMessage } from '../../src/sdk/ownerSigning';
import { SvdClient } from '../../src/sdk/svdClient';
import type { PoolStack } from './poolStack';
import { registerPrivateKey } from './runCapture';

/** A JSON answer of the API, with its error envelope when there is one. */
export type ApiAnswer = {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string; details?: Record<string, unknown> } };
};

/** Calls the API under test the way a client does: JSON in, JSON out, status kept. */
export function apiClient(baseUrl: string, apiKey: string) {
  async function call(method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> {
    const res = await fetch(`${baseUrl}${route}`, {
      method,
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as ApiAnswer['body'] };
  }
  const admin = { 'x-api-key': apiKey };
  return {
    call,
    get: (route: string, headers: Record<string, string> = {}) => call('GET', route, undefined, headers),
    post: (route: string, body: unknown, headers: Record<string, string> = {}) => call('POST', route, body, headers),
    adminPost: (route: string, body: unknown, headers: Record<string, string> = {}) => call('POST', route, body, { ...admin, ...headers }),
    adminGet: (route: string) => call('GET', route, undefined, admin),
    /** Polls a status URL (registration or transfer) until its workflow is no longer running. */
    async waitDone(
      statusUrl: string,
      timeoutMs = 60_000,
    ): Promise<ApiAnswer['body'] & { state: string; status: string; txid?: string; lastError?: string }> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const answer = await call('GET', statusUrl, undefined, admin);
        const body = answer.body as ApiAnswer['body'] & { state: string; status: string };
        if (answer.status === 200 && body.state !== 'running') return body;
        if (Date.now() > deadline) throw new Error(`${statusUrl} still running: ${JSON.stringify(answer.body)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** A registration request for a uid, owned by `owner`. */
export function registrationBody(uid: string, owner: string) {
  return {
    product: { uid_tag_id: uid, name: 'Field jacket', category: 'apparel', sku: 'FJ-01', serial_number: 'SN-77', material: 'wool' },
    metadata: { notes: 'limited run', image: 'https://img.example/fj.png', patch_location: 'left sleeve' },
    auth: { owner },
  };
}

/** Funds the pool with `count` confirmed outputs and syncs it, as the top-up schedule would. */
export async function fundAndSyncPool(stack: PoolStack, count: number, satoshis = 10_000): Promise<void> {
  for (let i = 0; i < count; i++) await stack.fund(stack.accounts.funding.address, satoshis + i);
  const sync = await startSync(stack.deps.temporal, stack.accounts.funding.keyIdentifier, 'test');
  await waitForPoolOperation(stack.deps.temporal, sync.workflowId, sync.runId, { pollMs: 100 });
}

export interface TestOwner {
  privHex: string;
  address: string;
  userId: string;
  /** An SVD session token, once logged in. */
  token: string;
}

/**
 * An owner with a fresh key pair (its address on testnet), registered for SVD, logged in through the SDK, and its
 * address bound to its account (POST /v1/owner/addresses).
 */
export async function loggedInOwner(baseUrl: string, apiKey: string): Promise<TestOwner> {
  const priv = PrivateKey.fromRandom();
  const userId = new Types.ObjectId().toHexString();
  const pmc = PrivateKey.fromRandom();
  registerPrivateKey('svdPmcPrivHex', pmc.toHex());
  registerPrivateKey('ownerPrivHex', priv.toHex());
  const res = await fetch(`${baseUrl}/api/svd/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({ userId, pmcHex: pmc.toPublicKey().toString() }),
  });
  if (res.status !== 201) throw new Error(`SVD register: ${res.status} ${await res.text()}`);
  const session = await new SvdClient({ baseUrl }).login(userId, pmc.toHex());
  const owner = { privHex: priv.toHex(), address: priv.toPublicKey().toAddress('testnet'), userId, token: session.token };
  const bound = await fetch(`${baseUrl}/v1/owner/addresses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${owner.token}` },
    body: JSON.stringify(bindAddressBody(owner)),
  });
  if (bound.status !== 201) throw new Error(`bind address: ${bound.status} ${await bound.text()}`);
  return owner;
}

/** The body that binds `owner.address` to `owner.userId`, signed with `signer`'s key (the owner's by default). */
export function bindAddressBody(owner: Pick<TestOwner, 'address' | 'userId'>, signerPrivHex?: string, nonce = newNonce()) {
  const message = {
    purpose: 'patchproof.bind-address' as const,
    address: owner.address,
    userId: owner.userId,
    nonce,
    expiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
  };
  const { pubKeyHex, signatureDerHex } = signOwnerMessage(signerPrivHex ?? (owner as TestOwner).privHex, message);
  return { address: owner.address, nonce, expiresAt: message.expiresAt, pubKey: pubKeyHex, signature: signatureDerHex };
}

export const newNonce = () => randomBytes(16).toString('hex');

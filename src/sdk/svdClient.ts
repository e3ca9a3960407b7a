import { PrivateKey } from '@bsv/sdk';
import { parseChallenge, signChallenge } from '../auth/svdCrypto';

/**
 * TypeScript client for PatchProof owner authentication (docs/AUTH.md): SVD login, key registration and email codes.
 * Errors carry the server's stable code from the envelope `{error:{code,message,details}}`; the retry on an expired
 * or replayed challenge keys on that code, so reading any other field would silently disable it.
 */

export class SvdError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'SvdError';
  }
}

export interface SvdClientOptions {
  baseUrl: string;
  fetchImpl?: typeof fetch;
  /** Attempts of a login when the challenge expired or raced (SVD_EXPIRED, SVD_REPLAYED). */
  maxAttempts?: number;
  headers?: Record<string, string>;
}

export interface SvdSession {
  token: string;
  expiresAt: number;
  kid: string;
}

export interface Challenge {
  M: string;
  challengeId: string;
  expiresInSec: number;
}

const RETRYABLE = new Set(['SVD_EXPIRED', 'SVD_REPLAYED']);

export class SvdClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly maxAttempts: number;
  private readonly headers: Record<string, string>;

  constructor(options: SvdClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetchImpl ?? fetch;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 2);
    this.headers = options.headers ?? {};
  }

  /** Signs a challenge M with the owner's master private key: (pmcPriv + sha256(M)) mod n, low-S DER hex. */
  static signChallenge(pmcPrivHex: string, mHex: string): string {
    const challenge = parseChallenge(mHex);
    if (!challenge) throw new SvdError('SVD_BAD_CHALLENGE', 'M must be 48 hex characters', 0);
    return signChallenge(PrivateKey.fromHex(pmcPrivHex), challenge);
  }

  /** The compressed public key (PMC) of a master private key, as /api/svd/register expects it. */
  static publicKeyOf(pmcPrivHex: string): string {
    return PrivateKey.fromHex(pmcPrivHex).toPublicKey().toString();
  }

  kid(): Promise<{ kid: string }> {
    return this.call('GET', '/api/svd/kid');
  }

  begin(userId: string): Promise<Challenge> {
    return this.call('POST', '/api/svd/begin', { userId });
  }

  complete(userId: string, M: string, signatureHex: string): Promise<SvdSession> {
    return this.call('POST', '/api/svd/complete', { userId, M, signatureHex });
  }

  /** begin → sign → complete; begins again when the challenge expired or was raced. */
  async login(userId: string, pmcPrivHex: string): Promise<SvdSession> {
    for (let attempt = 1; ; attempt++) {
      const { M } = await this.begin(userId);
      try {
        return await this.complete(userId, M, SvdClient.signChallenge(pmcPrivHex, M));
      } catch (err) {
        if (!(err instanceof SvdError) || !RETRYABLE.has(err.code) || attempt >= this.maxAttempts) throw err;
      }
    }
  }

  /** Registers a key with an email-verified token or an SVD session of the current key (to replace it). */
  register(pmcHex: string, bearer: string): Promise<{ userId: string; keyId: string; replaced: boolean }> {
    return this.call('POST', '/api/svd/register', { pmcHex }, { authorization: `Bearer ${bearer}` });
  }

  requestEmailCode(identifier: string): Promise<{ success: true; messageId: string }> {
    return this.call('POST', '/v1/auth/request-verification', { identifier });
  }

  submitEmailCode(identifier: string, code: string): Promise<{ success: true; token: string; userId: string; expiresAt: number }> {
    return this.call('POST', '/v1/auth/submit-verification', { identifier, code });
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const response = await this.fetchImpl(`${this.baseUrl}${path}`, {
      method,
      headers: { ...this.headers, ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
      throw new SvdError(error?.code ?? 'HTTP_ERROR', error?.message ?? `HTTP ${response.status}`, response.status, error?.details);
    }
    return parsed as T;
  }
}

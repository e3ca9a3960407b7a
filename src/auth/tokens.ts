import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt, { type JwtPayload } from 'jsonwebtoken';
import type { OwnerAuthConfig } from '../config';
import { DomainError } from '../errors';

/**
 * The JWT keyring (docs/AUTH.md). Several HS256 keys by kid: the active one signs, every listed one verifies, and a
 * kid removed from the configuration is retired (its tokens fail). Every verification pins the algorithm and checks
 * kid, iss, aud, exp and the token type, so an email-verified token can never pass where an SVD session is needed.
 */

export type TokenType = 'svd-session' | 'email-verified';

/** Pinned: `alg: none` and RS/ES confusion are refused by construction. */
const ALGORITHM = 'HS256' as const;

export interface OwnerToken {
  type: TokenType;
  /** The owner's user id (24 hex). */
  userId: string;
  kid: string;
  jti: string;
  expiresAt: number;
  /** svd-session only: the registry key the login proved, so a later key replacement can check it is still current. */
  svdKeyId?: string;
}

export interface IssueTokenInput {
  type: TokenType;
  userId: string;
  jti: string;
  /** Extra claims for svd-session tokens (cnf binding, key id). */
  claims?: Record<string, unknown>;
}

export interface TokenKeyring {
  readonly activeKid: string;
  issue(input: IssueTokenInput): { token: string; expiresAt: number };
  /** Throws DomainError UNAUTHORIZED with `details.reason` unless the token is valid and of an `expected` type. */
  verify(token: string, expected: TokenType | readonly TokenType[]): OwnerToken;
}

export function createTokenKeyring(
  config: OwnerAuthConfig['jwt'],
  clockSkewSec: number,
  now: () => number = Date.now,
  /** The keyring in effect after rotations (src/rotation/keyring.ts); the configuration's without it. */
  live?: () => Pick<OwnerAuthConfig['jwt'], 'keys' | 'activeKid'>,
): TokenKeyring {
  const current = live ?? (() => config);
  const ttl: Record<TokenType, number> = { 'svd-session': config.svdSessionTtlSec, 'email-verified': config.emailTokenTtlSec };
  const fail = (reason: string, message = 'The bearer token is not valid.') => new DomainError('UNAUTHORIZED', message, { reason });
  // jsonwebtoken turns a string secret into a key on every call, after first trying (and failing) to parse it as a
  // PEM private or public key: about a millisecond per token. One KeyObject per secret, made once.
  const keyObjects = new Map<string, KeyObject>();
  const keyFor = (secret: string) => {
    let key = keyObjects.get(secret);
    if (!key) keyObjects.set(secret, (key = createSecretKey(Buffer.from(secret))));
    return key;
  };

  return {
    get activeKid() {
      return current().activeKid;
    },

    issue({ type, userId, jti, claims }) {
      const iat = Math.floor(now() / 1000);
      const exp = iat + ttl[type];
      const { keys, activeKid } = current();
      const token = jwt.sign({ ...claims, typ: type, sub: userId, jti, iat, nbf: iat, exp }, keyFor(keys[activeKid]!), {
        algorithm: ALGORITHM,
        keyid: activeKid,
        issuer: config.issuer,
        audience: config.audience,
      });
      return { token, expiresAt: exp };
    },

    verify(token, expected) {
      const decoded = jwt.decode(token, { complete: true });
      if (!decoded || typeof decoded.payload !== 'object') throw fail('malformed');
      const kid = decoded.header.kid;
      if (decoded.header.alg !== ALGORITHM) throw fail('algorithm');
      if (typeof kid !== 'string') throw fail('missing_kid');
      const secret = current().keys[kid];
      if (secret === undefined) throw fail('unknown_kid');
      let payload: JwtPayload;
      try {
        payload = jwt.verify(token, keyFor(secret), {
          algorithms: [ALGORITHM],
          issuer: config.issuer,
          audience: config.audience,
          clockTolerance: clockSkewSec,
          clockTimestamp: Math.floor(now() / 1000),
        }) as JwtPayload;
      } catch (err) {
        const name = (err as Error).name;
        if (name === 'TokenExpiredError') throw fail('expired', 'The bearer token has expired.');
        throw fail('invalid');
      }
      const accepted: readonly TokenType[] = typeof expected === 'string' ? [expected] : expected;
      const type = accepted.find((t) => t === payload.typ);
      if (!type) throw fail('wrong_type', `This route needs a ${accepted.join(' or ')} token.`);
      if (typeof payload.sub !== 'string' || !/^[0-9a-f]{24}$/.test(payload.sub)) throw fail('invalid');
      if (typeof payload.jti !== 'string' || typeof payload.exp !== 'number') throw fail('invalid');
      const svdKeyId = (payload as { svd_kid?: unknown }).svd_kid;
      return {
        type,
        userId: payload.sub,
        kid,
        jti: payload.jti,
        expiresAt: payload.exp,
        ...(typeof svdKeyId === 'string' && { svdKeyId }),
      };
    },
  };
}

/** The bearer credential of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(header ?? '');
  return match?.[1];
}

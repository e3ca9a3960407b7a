import type { RequestHandler } from 'express';
import type { SvdService } from '../../src/auth/svdService';
import { bearerToken, type OwnerToken, type TokenKeyring } from '../../src/auth/tokens';
import { DomainError } from '../../src/errors';

/**
 * Requires an SVD session token (never an email-verified one) whose key is still the user's current key: a session
 * of a revoked or replaced key stops working at once, not at its expiry. Sets `res.locals.owner`. Transfers and
 * unlocks mount this.
 */
export function requireOwnerSession(deps: { keyring: TokenKeyring; svd: Pick<SvdService, 'currentKeyId'> }): RequestHandler {
  return (req, res, next) => {
    const token = bearerToken(req.get('authorization'));
    if (!token) return next(new DomainError('UNAUTHORIZED', 'An SVD session bearer token is required.', { reason: 'missing_token' }));
    let owner: OwnerToken;
    try {
      owner = deps.keyring.verify(token, 'svd-session');
    } catch (err) {
      return next(err);
    }
    deps.svd.currentKeyId(owner.userId).then((keyId) => {
      if (keyId === null || keyId !== owner.svdKeyId) {
        return next(
          new DomainError('UNAUTHORIZED', 'The key this session was proved with is no longer current.', { reason: 'key_not_current' }),
        );
      }
      res.locals.owner = owner;
      next();
    }, next);
  };
}

/** The owner a requireOwnerSession route is serving. */
export function ownerOf(locals: Record<string, unknown>): OwnerToken {
  const owner = locals.owner as OwnerToken | undefined;
  if (!owner) throw new Error('requireOwnerSession is not mounted on this route');
  return owner;
}

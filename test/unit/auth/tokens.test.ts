import jwt from 'jsonwebtoken';
import { createTokenKeyring } from '../../../src/auth/tokens';
import { DomainError } from '../../../src/errors';

const config = {
  keys: { a: 'secret-a-0123456789abcdef0123456789ab', b: 'secret-b-0123456789abcdef0123456789ab' },
  activeKid: 'a',
  issuer: 'patchproof',
  audience: 'patchproof-api',
  svdSessionTtlSec: 600,
  emailTokenTtlSec: 900,
};
const userId = '64b7f0c2a1b2c3d4e5f60718';

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return (err.details as { reason: string }).reason;
    throw err;
  }
  return undefined;
}

describe('JWT keyring', () => {
  it('signs with the active kid and verifies with any listed kid', () => {
    const keyringA = createTokenKeyring(config, 0);
    const keyringB = createTokenKeyring({ ...config, activeKid: 'b' }, 0);
    const { token } = keyringA.issue({ type: 'svd-session', userId, jti: 'j', claims: { svd_kid: 'k1' } });
    expect(jwt.decode(token, { complete: true })?.header).toMatchObject({ alg: 'HS256', kid: 'a' });
    expect(keyringB.verify(token, 'svd-session')).toMatchObject({ userId, kid: 'a', type: 'svd-session', svdKeyId: 'k1' });
  });

  it('refuses a token of a retired kid', () => {
    const { token } = createTokenKeyring(config, 0).issue({ type: 'svd-session', userId, jti: 'j' });
    const retired = createTokenKeyring({ ...config, keys: { b: config.keys.b }, activeKid: 'b' }, 0);
    expect(reasonOf(() => retired.verify(token, 'svd-session'))).toBe('unknown_kid');
  });

  it('keeps the token types apart in both directions', () => {
    const keyring = createTokenKeyring(config, 0);
    const email = keyring.issue({ type: 'email-verified', userId, jti: 'e' }).token;
    const svd = keyring.issue({ type: 'svd-session', userId, jti: 's' }).token;
    expect(reasonOf(() => keyring.verify(email, 'svd-session'))).toBe('wrong_type');
    expect(reasonOf(() => keyring.verify(svd, 'email-verified'))).toBe('wrong_type');
    expect(keyring.verify(email, ['email-verified', 'svd-session']).type).toBe('email-verified');
  });

  it('expires tokens after their type’s lifetime, with the configured skew', () => {
    let now = 1_700_000_000_000;
    const keyring = createTokenKeyring(config, 30, () => now);
    const { token, expiresAt } = keyring.issue({ type: 'svd-session', userId, jti: 'j' });
    expect(expiresAt).toBe(1_700_000_000 + 600);
    now += (600 + 29) * 1000;
    expect(keyring.verify(token, 'svd-session').userId).toBe(userId);
    now += 2_000;
    expect(reasonOf(() => keyring.verify(token, 'svd-session'))).toBe('expired');
  });

  it('pins HS256: an RS/none/HS512 header is refused before any key is used', () => {
    const keyring = createTokenKeyring(config, 0);
    const payload = { typ: 'svd-session', sub: userId, jti: 'j', iss: 'patchproof', aud: 'patchproof-api' };
    const hs512 = jwt.sign(payload, config.keys.a, { algorithm: 'HS512', keyid: 'a', expiresIn: 60 });
    expect(reasonOf(() => keyring.verify(hs512, 'svd-session'))).toBe('algorithm');
    expect(reasonOf(() => keyring.verify('not-a-token', 'svd-session'))).toBe('malformed');
  });
});

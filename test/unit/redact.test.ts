import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { PrivateKey } from '@bsv/sdk';
import { isSecretField, REDACTED, redact, redactString } from '../../src/logging/redact';

describe('redaction', () => {
  it('replaces fields whose names mark them secret, at any depth and in any spelling', () => {
    const out = redact({
      headers: { authorization: 'Bearer abc', 'x-api-key': 'k-123', cookie: 'session=1' },
      body: { pmcHex: '02ab', M: 'cafe', code: '123456', svdSecret: 'x', nested: [{ password: 'p', Private_Key: 'pk' }] },
      keep: 'visible',
    });
    expect(out).toEqual({
      headers: { authorization: REDACTED, 'x-api-key': REDACTED, cookie: REDACTED },
      body: { pmcHex: REDACTED, M: REDACTED, code: REDACTED, svdSecret: REDACTED, nested: [{ password: REDACTED, Private_Key: REDACTED }] },
      keep: 'visible',
    });
  });

  // Exact names alone let compound ones through (audit probe: all of these were logged in clear).
  it.each([
    'unlockContentSecret',
    'masterSecret',
    'sealedSecret',
    'newJwtSecret',
    'sessionToken',
    'emailToken',
    'bearer_token',
    'privHex',
    'pmcPrivHex',
    'privateKeyHex',
    'PRIVATE_KEY',
    'verifyCode',
    'email_code',
    'recoveryCodes',
    'jwtKeys',
    'jwtKeyring',
    'smtpApiKey',
    'redisPassword',
    'passwordHash',
    'dbPasswd',
    'redisPass',
    'localPmsWif',
    'emailOtp',
    'walletSeed',
    'seedPhrase',
    'mnemonicWords',
    'mHex',
  ])('treats the compound name %s as secret', (name) => {
    expect(isSecretField(name)).toBe(true);
    expect(redact({ [name]: 'material' })).toEqual({ [name]: REDACTED });
  });

  // Fields current log lines carry: identifiers and descriptions of keys stay visible, only key material is secret.
  it.each([
    'txid',
    'kid',
    'previousKid',
    'keyId',
    'previousKeyId',
    'keyIdentifier',
    'keyIdentifiers',
    'changeKeyId',
    'fundingKeyIdentifier',
    'newKey',
    'oldKey',
    'purpose',
    'tokenType',
    'emailTokenTtlSec',
    'apiKeyId',
    'secretMode',
    'errorCode',
    'statusCode',
    'status_code',
    'exitCode',
    'opcode',
    'messageId',
    'userId',
    'reason',
    'bypass',
  ])('keeps the harmless field %s visible', (name) => {
    expect(isSecretField(name)).toBe(false);
    expect(redact({ [name]: 'visible' })).toEqual({ [name]: 'visible' });
  });

  it('keeps the code of an error envelope visible but never a verification code', () => {
    expect(redact({ body: { error: { code: 'NOT_FOUND', message: 'm', requestId: 'r' } } })).toEqual({
      body: { error: { code: 'NOT_FOUND', message: 'm', requestId: 'r' } },
    });
    expect(redact({ error: { code: 'CONFLICT' } })).toEqual({ error: { code: 'CONFLICT' } });
    expect(redact({ error: { code: '123456' } })).toEqual({ error: { code: REDACTED } });
    expect(redact({ request: { code: 'NOT_FOUND' } })).toEqual({ request: { code: REDACTED } });
  });

  it('scrubs JWTs, bearer credentials and connection-string passwords from free text', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    const text = redactString(`token ${jwt} header Authorization: Bearer abcdefghijklmnop url mongodb://app:hunter2@db:27017/x`);
    expect(text).not.toContain(jwt);
    expect(text).not.toContain('abcdefghijklmnop');
    expect(text).not.toContain('hunter2');
    expect(text).toContain('mongodb://app:[REDACTED]@db:27017/x');
  });

  it('removes the secret of a stored API key quoted in free text, keeping its id', () => {
    const key = `pp_live_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
    const id = key.split('_')[2]!;
    const out = redactString(`key ${key} was revoked`);
    expect(out).toBe(`key pp_live_${id}_${REDACTED} was revoked`);
  });

  it('masks email addresses but keeps their domain', () => {
    expect(redactString('mail to alice.smith@example.com failed')).toBe('mail to a***@example.com failed');
  });

  it('removes WIF private keys and PEM blocks', () => {
    // Generated per run: no key material lives in the repository.
    const wif = PrivateKey.fromRandom().toWif();
    const pem = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    const pemBody = pem.split('\n')[1]!;
    const out = redactString(`wif ${wif} pem ${pem}`);
    expect(out).not.toContain(wif);
    expect(out).not.toContain(pemBody);
  });

  it('keeps the structure of errors, redacting their messages, and survives cycles', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const out = redact({ err: new Error('login for bob@example.org failed'), cyclic }) as {
      err: { message: string; name: string };
      cyclic: { self: unknown };
    };
    expect(out.err.name).toBe('Error');
    expect(out.err.message).toBe('login for b***@example.org failed');
    expect(out.cyclic.self).toBe('[Circular]');
  });

  it('does not mutate its input', () => {
    const input = { password: 'p' };
    redact(input);
    expect(input.password).toBe('p');
  });
});

import { ConfigError, loadConfig } from '../../../src/config';

/** A production environment that passes every other rule (as in test/unit/config.test.ts). */
const productionEnvironment = () => ({
  NODE_ENV: 'production',
  API_KEY: 'k'.repeat(40),
  JWT_SECRET: 'j'.repeat(40),
  MONGODB_URI: 'mongodb://app:pw@db1:27017/patchproof',
  REDIS_URL: 'rediss://:redis-pass@cache.internal:6380/2',
  TEMPORAL_ADDRESS: 'patchproof.abcd.tmprl.cloud:7233',
  TEMPORAL_NAMESPACE: 'patchproof.abcd',
  TEMPORAL_API_KEY: 'temporal-cloud-key',
  KMS_SIGN_URL: 'https://kms.internal',
  KMS_API_KEY: 'kms-key',
  ISSUER_KEY_IDENTIFIER: 'issuer-v2',
  UTXO_FUNDING_KEY_IDENTIFIER: 'funding-v1',
});

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('owner-auth configuration', () => {
  it('builds the keyring from JWT_KEYS with the first kid active, or from JWT_SECRET', () => {
    const listed = loadConfig({ JWT_KEYS: 'k2:two,k1:one' }).ownerAuth.jwt;
    expect(listed).toMatchObject({ keys: { k2: 'two', k1: 'one' }, activeKid: 'k2' });
    expect(loadConfig({ JWT_SECRET: 'only-secret' }).ownerAuth.jwt).toMatchObject({ keys: { 'jwt-1': 'only-secret' }, activeKid: 'jwt-1' });
  });

  it('refuses an active kid that is not in the keyring, without echoing secrets', () => {
    const problems = problemsOf({ JWT_KEYS: 'k1:very-secret-value', JWT_ACTIVE_KID: 'k9' });
    expect(problems).toEqual(['JWT_ACTIVE_KID: must name a kid of JWT_KEYS']);
    expect(problems.join()).not.toContain('very-secret-value');
  });

  it('derives SVD secrets through the KMS in production and refuses a local server key there', () => {
    expect(loadConfig(productionEnvironment()).ownerAuth.svd.mode).toBe('kms');
    const problems = problemsOf({
      ...productionEnvironment(),
      SVD_USE_KMS: 'false',
      SVD_SERVER_PMS_WIF: 'L1aW4aubDFB7yfras2S1mN3bqg9nwySY8nkoLmJebSLD5BWv3ENZ',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'SVD_USE_KMS: production derives SVD secrets through the KMS only',
        'SVD_SERVER_PMS_WIF: a local SVD server key is refused in production',
      ]),
    );
    expect(loadConfig({}).ownerAuth.svd.mode).toBe('local');
  });

  it('needs 32-character JWT_KEYS secrets in production', () => {
    expect(problemsOf({ ...productionEnvironment(), JWT_KEYS: 'k1:short' })).toContain(
      'JWT_KEYS: the secret of k1 must be at least 32 characters',
    );
  });

  it('points dev at the SMTP capture and leaves production to name its relay', () => {
    expect(loadConfig({}).ownerAuth.smtp).toMatchObject({ host: '127.0.0.1', port: 2525, secure: false });
    expect(loadConfig(productionEnvironment()).ownerAuth.smtp.host).toBeUndefined();
  });
});

import { PrivateKey } from '@bsv/sdk';
import { loadConfig } from '../../../src/config';
import { configProblems, PRODUCTION_OK } from '../../support/productionConfig';

const productionEnvironment = () => ({ ...PRODUCTION_OK });

const problemsOf = configProblems;

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
      // Generated per run: no key material lives in the repository.
      SVD_SERVER_PMS_WIF: PrivateKey.fromRandom().toWif(),
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

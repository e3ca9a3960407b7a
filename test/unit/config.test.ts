import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PrivateKey } from '@bsv/sdk';
import { ConfigError, DEV_DEFAULTS, ENV_VARIABLE_NAMES, loadConfig } from '../../src/config';
import { configProblems, PRODUCTION_OK, PRODUCTION_REQUIRED_VARIABLES } from '../support/productionConfig';

/** Expects loadConfig to fail and returns its problems. */
function problemsOf(env: Record<string, string>): string[] {
  const problems = configProblems(env);
  if (problems.length === 0) throw new Error('expected a ConfigError');
  return problems;
}

describe('configuration', () => {
  it('runs on embedded dev defaults with an empty environment', () => {
    const config = loadConfig({});
    expect(config.env).toBe('development');
    expect(config.http.port).toBe(3001);
    expect(config.mongo.uri).toBe(DEV_DEFAULTS.MONGODB_URI);
    expect(config.temporal.address).toBe('127.0.0.1:7233');
    expect(config.log.format).toBe('pretty');
    expect(config.http.metricsRequireApiKey).toBe(false);
  });

  it('accepts a complete production environment and secures Temporal with TLS when an API key is set', () => {
    const config = loadConfig(PRODUCTION_OK);
    expect(config.isProduction).toBe(true);
    expect(config.log.format).toBe('json');
    expect(config.temporal.apiKey).toBe('temporal-cloud-key');
    expect(config.temporal.tls).toEqual({});
    expect(config.http.metricsRequireApiKey).toBe(true);
  });

  it('fails in production with one message that lists every missing variable', () => {
    let error: unknown;
    try {
      loadConfig({ NODE_ENV: 'production' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const name of [...PRODUCTION_REQUIRED_VARIABLES, 'TEMPORAL_TLS']) {
      expect(message).toContain(name);
    }
    expect((error as ConfigError).problems).toHaveLength(PRODUCTION_REQUIRED_VARIABLES.length + 1);
  });

  it('still lists every production problem when a variable is also malformed', () => {
    const problems = problemsOf({ NODE_ENV: 'production', PORT: 'abc' });
    expect(problems.filter((p) => p.startsWith('PORT: '))).toHaveLength(1);
    for (const name of PRODUCTION_REQUIRED_VARIABLES) expect(problems).toContain(`${name}: required in production`);
    expect(problems.some((p) => p.startsWith('TEMPORAL_TLS / TEMPORAL_API_KEY: '))).toBe(true);
    expect(problems).toHaveLength(PRODUCTION_REQUIRED_VARIABLES.length + 2);
  });

  it('reports a malformed required variable once, as malformed rather than missing', () => {
    const problems = problemsOf({ ...PRODUCTION_OK, KMS_SIGN_URL: 'not a url', PORT: '70000' });
    expect(problems.map((p) => p.slice(0, p.indexOf(':')))).toEqual(['PORT', 'KMS_SIGN_URL']);
  });

  it('keeps running the production rules on the variables that did parse', () => {
    const problems = problemsOf({
      ...PRODUCTION_OK,
      WORKER_METRICS_PORT: '-1',
      ALLOW_BOOTSTRAP_API_KEY: 'true',
      API_KEY: 'short',
      REDIS_URL: 'redis://cache:6379',
    });
    expect(problems).toEqual([
      expect.stringMatching(/^WORKER_METRICS_PORT: /),
      'REDIS_URL: Redis must require auth in production (a password in the URL or REDIS_PASSWORD)',
      'API_KEY: must be at least 32 characters',
    ]);
  });

  it('treats empty values (JWT_SECRET= in an EnvironmentFile) as missing', () => {
    expect(problemsOf({ ...PRODUCTION_OK, JWT_SECRET: '' })).toEqual(['JWT_SECRET: required in production']);
  });

  // §14 item 21 of the predecessor: one static key did everything. Production runs on stored, scoped keys.
  it('refuses the bootstrap API_KEY in production unless ALLOW_BOOTSTRAP_API_KEY=true, and needs none', () => {
    expect(loadConfig(PRODUCTION_OK).auth.apiKey).toBe('');
    expect(problemsOf({ ...PRODUCTION_OK, API_KEY: 'k'.repeat(40) })).toEqual([
      'API_KEY: the bootstrap key is refused in production unless ALLOW_BOOTSTRAP_API_KEY=true (use patchproof api-keys create)',
    ]);
    expect(loadConfig({ ...PRODUCTION_OK, API_KEY: 'k'.repeat(40), ALLOW_BOOTSTRAP_API_KEY: 'true' }).auth.apiKey).toBe('k'.repeat(40));
    expect(loadConfig({ NODE_ENV: 'development' }).auth.apiKey).toBe(DEV_DEFAULTS.API_KEY);
  });

  it('refuses a MongoDB URI without credentials in production', () => {
    expect(problemsOf({ ...PRODUCTION_OK, MONGODB_URI: 'mongodb://db1:27017/patchproof' })).toEqual([
      'MONGODB_URI: must carry credentials in production',
    ]);
  });

  it('accepts certificate authentication to MongoDB without a password', () => {
    expect(() =>
      loadConfig({ ...PRODUCTION_OK, MONGODB_URI: 'mongodb+srv://cluster0.example.net/patchproof?authMechanism=MONGODB-X509' }),
    ).not.toThrow();
  });

  // A `:\\S+@` regex never sees a password embedded in the Redis URL.
  it('detects a Redis password embedded in the URL, including URL-encoded ones', () => {
    expect(() => loadConfig({ ...PRODUCTION_OK, REDIS_URL: 'redis://:p%40ss%3Aword@cache:6379' })).not.toThrow();
    expect(() => loadConfig({ ...PRODUCTION_OK, REDIS_URL: 'redis://default:secret@cache:6379/0' })).not.toThrow();
  });

  it('requires Redis auth in production, by URL password or REDIS_PASSWORD', () => {
    expect(problemsOf({ ...PRODUCTION_OK, REDIS_URL: 'redis://cache:6379' })).toEqual([
      'REDIS_URL: Redis must require auth in production (a password in the URL or REDIS_PASSWORD)',
    ]);
    expect(() => loadConfig({ ...PRODUCTION_OK, REDIS_URL: 'redis://cache:6379', REDIS_PASSWORD: 'separate' })).not.toThrow();
  });

  it('refuses development defaults and short secrets in production', () => {
    const problems = problemsOf({ ...PRODUCTION_OK, ALLOW_BOOTSTRAP_API_KEY: 'true', API_KEY: DEV_DEFAULTS.API_KEY, JWT_SECRET: 'short' });
    expect(problems).toContain('API_KEY: the development default is not allowed in production');
    expect(problems).toContain('JWT_SECRET: must be at least 32 characters');
  });

  it('requires TLS, an API key or an explicit opt-out for Temporal in production', () => {
    const { TEMPORAL_API_KEY: _drop, ...withoutKey } = PRODUCTION_OK;
    expect(problemsOf(withoutKey)).toEqual([
      'TEMPORAL_TLS / TEMPORAL_API_KEY: production needs TLS or an API key (or TEMPORAL_INSECURE=true for a private plaintext cluster)',
    ]);
    expect(loadConfig({ ...withoutKey, TEMPORAL_INSECURE: 'true' }).temporal.tls).toBeUndefined();
    expect(loadConfig({ ...withoutKey, TEMPORAL_TLS: 'true' }).temporal.tls).toEqual({});
  });

  it('names every missing certificate file in one error, for Temporal and for MongoDB', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'config-tls-'));
    const cert = path.join(dir, 'client.pem');
    writeFileSync(cert, 'PEM');
    const problems = problemsOf({
      ...PRODUCTION_OK,
      TEMPORAL_TLS_CERT_PATH: cert,
      TEMPORAL_TLS_KEY_PATH: path.join(dir, 'client.key'),
      TEMPORAL_TLS_CA_PATH: path.join(dir, 'ca.pem'),
      MONGODB_URI: `mongodb://app:pw@db1,db2/patchproof?replicaSet=rs0&tls=true&tlsCAFile=${encodeURIComponent(path.join(dir, 'mongo-ca.pem'))}`,
    });
    expect(problems).toEqual([
      `TEMPORAL_TLS_KEY_PATH: ${path.join(dir, 'client.key')} is missing or not readable`,
      `TEMPORAL_TLS_CA_PATH: ${path.join(dir, 'ca.pem')} is missing or not readable`,
      `MONGODB_URI tlsCAFile: ${path.join(dir, 'mongo-ca.pem')} is missing or not readable`,
    ]);
    writeFileSync(path.join(dir, 'client.key'), 'KEY');
    expect(
      loadConfig({ ...PRODUCTION_OK, TEMPORAL_TLS_CERT_PATH: cert, TEMPORAL_TLS_KEY_PATH: path.join(dir, 'client.key') }).temporal.tls,
    ).toEqual({
      certPath: cert,
      keyPath: path.join(dir, 'client.key'),
    });
  });

  it('versions the workers only when a deployment name is set, with the deploy sha as the default build id', () => {
    expect(loadConfig({}).worker.versioning).toBeUndefined();
    expect(loadConfig({ WORKER_DEPLOYMENT_NAME: 'patchproof', DEPLOY_SHA: 'abc123' }).worker.versioning).toEqual({
      deploymentName: 'patchproof',
      buildId: 'abc123',
      defaultBehavior: 'PINNED',
    });
    expect(
      loadConfig({ WORKER_DEPLOYMENT_NAME: 'patchproof', WORKER_BUILD_ID: 'b-2', WORKER_VERSIONING_BEHAVIOR: 'auto-upgrade' }).worker
        .versioning,
    ).toEqual({ deploymentName: 'patchproof', buildId: 'b-2', defaultBehavior: 'AUTO_UPGRADE' });
    expect(problemsOf({ WORKER_BUILD_ID: 'b-2' })).toEqual([
      'WORKER_BUILD_ID: only used with WORKER_DEPLOYMENT_NAME (worker versioning); set both or neither',
    ]);
  });

  it('names wrongly typed variables without echoing their values', () => {
    let message = '';
    try {
      loadConfig({ PORT: 'not-a-port', NODE_ENV: 'staging', KMS_SIGN_URL: 'secret-looking-value' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('PORT');
    expect(message).toContain('NODE_ENV');
    expect(message).toContain('KMS_SIGN_URL');
    expect(message).not.toContain('secret-looking-value');
  });

  it('never puts a secret value into the error message', () => {
    const secret = 'super-secret-value-that-is-long-enough-000';
    let message = '';
    try {
      loadConfig({ ...PRODUCTION_OK, API_KEY: secret, MONGODB_URI: `mongodb://db/${secret}`, KMS_SIGN_URL: `http://kms/${secret}` });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('MONGODB_URI');
    expect(message).not.toContain(secret);
  });

  it('reads comma lists and switches the system-check schedule off', () => {
    const config = loadConfig({ CORS_ALLOWED_ORIGINS: 'https://a.example, https://b.example,', SYSTEM_CHECK_EVERY: 'off' });
    expect(config.http.corsAllowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.worker.systemCheckEvery).toBeNull();
  });

  it('honours the test interceptor module under NODE_ENV=test only, and refuses it in every other environment', () => {
    const module = 'test/support/crashInterceptor.ts';
    expect(loadConfig({ NODE_ENV: 'test', WORKER_TEST_INTERCEPTOR_MODULE: module }).worker.testInterceptorModule).toBe(module);
    expect(loadConfig({ NODE_ENV: 'test' }).worker.testInterceptorModule).toBeUndefined();
    expect(problemsOf({ WORKER_TEST_INTERCEPTOR_MODULE: module })).toEqual([expect.stringMatching(/^WORKER_TEST_INTERCEPTOR_MODULE: /)]);
    expect(problemsOf({ ...PRODUCTION_OK, WORKER_TEST_INTERCEPTOR_MODULE: module })).toEqual([
      expect.stringMatching(/^WORKER_TEST_INTERCEPTOR_MODULE: /),
    ]);
  });

  describe('UTXO pool settings', () => {
    it('reads the pool variables and their legacy aliases, with their defaults', () => {
      const pool = loadConfig({ FUNDING_KEY_IDENTIFIER: 'fund-legacy', MIN_UTXO_COUNT: '25', WOC_NETWORK: 'test' }).pool;
      expect(pool).toMatchObject({ fundingKeyIdentifier: 'fund-legacy', changeKeyIdentifier: 'fund-legacy' });
      expect(pool.defaults).toMatchObject({
        minPool: 25,
        splitSizeSats: 5000,
        maxSplitOutputs: 40,
        dustThresholdSats: 2000,
        dustSweepLimit: 20,
      });
      expect(pool).toMatchObject({ topUpEvery: '15m', sweepCron: '0 2 * * *', reconcileEvery: '1h' });
      // The current name wins over the alias.
      expect(loadConfig({ UTXO_MIN_POOL: '7', MIN_UTXO_COUNT: '25' }).pool.defaults.minPool).toBe(7);
    });

    it('refuses addresses of the wrong network and a separate change address without its key', () => {
      const problems = problemsOf({
        WOC_NETWORK: 'main',
        UTXO_FUNDING_ADDRESS: 'mw6H5fyjbAxrP3NvYnHNAbccaNZv1oPauY',
        UTXO_CHANGE_ADDRESS: '1BoatSLRHtKNngkdXEeobR76b53LETtpyT',
      });
      expect(problems).toEqual([
        'UTXO_FUNDING_ADDRESS: not a P2PKH address of the main network',
        'UTXO_CHANGE_KEY_IDENTIFIER: required when UTXO_CHANGE_ADDRESS differs from the funding address',
      ]);
    });

    it('requires the funding key identifier in production and refuses the dev default there', () => {
      const { UTXO_FUNDING_KEY_IDENTIFIER: _omitted, ...withoutFunding } = PRODUCTION_OK;
      expect(problemsOf(withoutFunding)).toEqual(['UTXO_FUNDING_KEY_IDENTIFIER: required in production']);
      expect(problemsOf({ ...PRODUCTION_OK, UTXO_FUNDING_KEY_IDENTIFIER: 'funding' })).toEqual([
        'UTXO_FUNDING_KEY_IDENTIFIER: the development default is not allowed in production',
      ]);
    });

    it('reads FUNDING_PUBKEY_HEX as a compressed secp256k1 key and refuses anything else', () => {
      const key = PrivateKey.fromRandom().toPublicKey();
      const hex = key.toString();
      expect(loadConfig({ FUNDING_PUBKEY_HEX: hex.toUpperCase() }).pool.fundingPubKeyHex).toBe(hex);
      expect(loadConfig({}).pool.fundingPubKeyHex).toBeUndefined();
      const malformed = [
        key.encode(false, 'hex') as string, // uncompressed (65 bytes)
        hex.slice(0, -2), // 32 bytes
        `04${hex.slice(2)}`, // wrong prefix
        `${hex.slice(0, -1)}g`, // not hex
      ];
      for (const value of malformed) {
        expect(problemsOf({ FUNDING_PUBKEY_HEX: value })).toEqual([
          'FUNDING_PUBKEY_HEX: a 33-byte compressed SEC public key: 66 hex digits starting 02 or 03',
        ]);
      }
      // Well-formed, but x is beyond the field: no such point.
      expect(problemsOf({ FUNDING_PUBKEY_HEX: `02${'ff'.repeat(32)}` })).toEqual(['FUNDING_PUBKEY_HEX: not a point on secp256k1']);
    });

    it('refuses a FUNDING_PUBKEY_HEX whose address is not the configured funding address', () => {
      const key = PrivateKey.fromRandom().toPublicKey();
      const own = { FUNDING_PUBKEY_HEX: key.toString(), WOC_NETWORK: 'test' };
      expect(() => loadConfig({ ...own, UTXO_FUNDING_ADDRESS: key.toAddress('testnet') })).not.toThrow();
      const otherAddress = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');
      expect(problemsOf({ ...own, UTXO_FUNDING_ADDRESS: otherAddress })).toEqual([
        'FUNDING_PUBKEY_HEX: its test address is not UTXO_FUNDING_ADDRESS',
      ]);
    });

    it('switches schedules off with "off" and rejects malformed cron lines', () => {
      const pool = loadConfig({ UTXO_TOPUP_EVERY: 'off', UTXO_SWEEP_CRON: 'off', UTXO_RECONCILE_EVERY: 'off' }).pool;
      expect([pool.topUpEvery, pool.sweepCron, pool.reconcileEvery]).toEqual([null, null, null]);
      expect(problemsOf({ UTXO_SWEEP_CRON: 'nightly' })[0]).toMatch(/^UTXO_SWEEP_CRON: a five-field cron expression/);
    });
  });
});

// Every variable the operations runbook (seed/OPERATIONS-runbook.md, mostly its "Environment Variables" list) names,
// copied here as written there. Operators follow that runbook, so each name must still be read and documented.
const RUNBOOK_VARIABLES = [
  'DEPLOY_SHA',
  'FUNDING_ADDRESS',
  'FUNDING_PUBKEY_HEX',
  'ISSUER_KEY_IDENTIFIER',
  'JWT_SECRET',
  'KMS_API_KEY',
  'KMS_SIGN_URL',
  'METRICS_REQUIRE_API_KEY',
  'REDIS_URL',
  'SVD_KMS_KID',
  'SVD_USE_KMS',
];

describe("the runbook's variables", () => {
  it('are all read by the configuration', () => {
    expect(RUNBOOK_VARIABLES.filter((name) => !(ENV_VARIABLE_NAMES as string[]).includes(name))).toEqual([]);
  });

  it('are all documented in docs/CONFIGURATION.md', () => {
    const doc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'CONFIGURATION.md'), 'utf8');
    expect(RUNBOOK_VARIABLES.filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
  });
});

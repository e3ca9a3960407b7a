import { ConfigError, loadConfig } from '../../src/config';

/** The variables production must be given (the spec of the fail-fast check, written out rather than imported). */
export const PRODUCTION_REQUIRED_VARIABLES = [
  'JWT_SECRET',
  'MONGODB_URI',
  'REDIS_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'KMS_SIGN_URL',
  'KMS_API_KEY',
  'ISSUER_KEY_IDENTIFIER',
  'UTXO_FUNDING_KEY_IDENTIFIER',
  'UNLOCK_CONTENT_SECRET',
];

/** A production environment that passes every rule; tests change one thing at a time. */
export const PRODUCTION_OK: Record<string, string> = {
  NODE_ENV: 'production',
  JWT_SECRET: 'j'.repeat(40),
  MONGODB_URI: 'mongodb://app:pw@db1:27017,db2:27017/patchproof?replicaSet=rs0',
  REDIS_URL: 'rediss://:redis-pass@cache.internal:6380/2',
  TEMPORAL_ADDRESS: 'patchproof.abcd.tmprl.cloud:7233',
  TEMPORAL_NAMESPACE: 'patchproof.abcd',
  TEMPORAL_API_KEY: 'temporal-cloud-key',
  KMS_SIGN_URL: 'https://kms.internal',
  KMS_API_KEY: 'kms-key',
  ISSUER_KEY_IDENTIFIER: 'issuer-v2',
  UTXO_FUNDING_KEY_IDENTIFIER: 'funding-v1',
  UNLOCK_CONTENT_SECRET: 'u'.repeat(40),
};

/** The problems loadConfig reports for this environment; none when it loads. */
export function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

/** The variables production must be given (the spec of the fail-fast check, written out rather than imported). */
export const PRODUCTION_REQUIRED_VARIABLES = [
  'API_KEY',
  'JWT_SECRET',
  'MONGODB_URI',
  'REDIS_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'KMS_SIGN_URL',
  'KMS_API_KEY',
  'ISSUER_KEY_IDENTIFIER',
  'UTXO_FUNDING_KEY_IDENTIFIER',
];

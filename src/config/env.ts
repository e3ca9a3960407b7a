import { z } from 'zod';

/**
 * Every environment variable the product reads, declared once. `docs/CONFIGURATION.md` documents each one and a
 * test keeps the two in step. Only `src/config` reads `process.env`.
 */

const boolean = z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off']).transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

const positiveInt = z.coerce.number().int().positive();

const commaList = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  DEPLOY_SHA: z.string().min(1).default('dev'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  ACCESS_LOG: boolean.default(true),

  PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  BIND: z.string().min(1).default('127.0.0.1'),
  TRUST_PROXY: z.string().min(1).default('loopback'),
  PUBLIC_BASE_URL: z.url().optional(),
  CORS_ALLOWED_ORIGINS: commaList.default([]),
  JSON_BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'a size such as 64kb')
    .default('64kb'),
  BATCH_BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'a size such as 16mb')
    .default('16mb'),
  BATCH_MAX_ITEMS: positiveInt.max(10_000).default(10_000),
  BATCH_MAX_CONCURRENT: positiveInt.max(50).default(2),
  ENABLE_SWAGGER_DOCS: boolean.default(true),
  METRICS_REQUIRE_API_KEY: boolean.optional(),
  PUBLIC_API_WINDOW_MS: positiveInt.default(60_000),
  PUBLIC_API_MAX: positiveInt.default(60),
  ADMIN_API_WINDOW_MS: positiveInt.default(60_000),
  ADMIN_API_MAX: positiveInt.default(120),
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),

  API_KEY: z.string().min(1).optional(),
  ALLOW_BOOTSTRAP_API_KEY: boolean.default(false),
  API_KEY_CACHE_MS: z.coerce.number().int().min(0).max(5_000).default(2_000),
  API_KEY_RATE_WINDOW_MS: positiveInt.default(60_000),
  API_KEY_RATE_MAX: positiveInt.default(600),
  API_KEY_REGISTRATIONS_PER_DAY: positiveInt.default(100_000),
  API_KEY_ROTATION_OVERLAP_HOURS: positiveInt.default(24),
  EXPORT_MAX_CONCURRENT: positiveInt.max(100).default(2),
  JWT_SECRET: z.string().min(1).optional(),
  UNLOCK_CONTENT_SECRET: z.string().min(1).optional(),
  MASTER_SECRET: z.string().min(1).optional(),

  MONGODB_URI: z.string().min(1).optional(),
  DB_SERVER_SELECTION_TIMEOUT_MS: positiveInt.default(5_000),
  DB_CONNECT_TIMEOUT_MS: positiveInt.default(10_000),
  DB_SOCKET_TIMEOUT_MS: positiveInt.default(45_000),
  DB_MAX_STATEMENTS_PER_COMMAND: positiveInt.default(16),
  DB_REQUEST_TIMEOUT_MS: positiveInt.default(1_500),

  REDIS_URL: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  REDIS_COMMAND_TIMEOUT_MS: positiveInt.default(500),
  RATE_LIMIT_TIMEOUT_MS: positiveInt.default(200),

  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: boolean.default(false),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  TEMPORAL_INSECURE: boolean.default(false),
  TEMPORAL_UI_URL: z.url().optional(),
  TEMPORAL_REQUEST_TIMEOUT_MS: positiveInt.default(1_500),
  REQUEST_DEADLINE_MS: positiveInt.default(1_800),
  CIRCUIT_FAILURE_THRESHOLD: positiveInt.default(3),
  CIRCUIT_OPEN_MS: positiveInt.default(3_000),
  TEMPORAL_METRICS_BIND_ADDRESS: z.string().min(1).default('127.0.0.1:9464'),
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9465),
  EMAIL_WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9466),
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  EMAIL_WORKER_IN_MAIN: boolean.default(false),
  SCHEDULE_METRICS_INTERVAL_SEC: positiveInt.max(3600).default(60),
  WORKER_SHUTDOWN_GRACE_MS: positiveInt.default(30_000),
  WORKER_SHUTDOWN_FORCE_MS: positiveInt.default(60_000),
  WORKER_MAX_CACHED_WORKFLOWS: positiveInt.max(100_000).default(500),
  WORKFLOW_BUNDLE_PATH: z.string().min(1).optional(),
  WORKER_TEST_INTERCEPTOR_MODULE: z.string().min(1).optional(),
  WORKER_DEPLOYMENT_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -')
    .optional(),
  WORKER_BUILD_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ., _ and -')
    .optional(),
  WORKER_VERSIONING_BEHAVIOR: z.enum(['pinned', 'auto-upgrade']).default('pinned'),
  SYSTEM_CHECK_EVERY: z
    .string()
    .regex(/^(off|\d+\s*(s|m|h|d))$/, 'a duration such as 15m, or off')
    .default('15m'),

  KMS_SIGN_URL: z.url().optional(),
  KMS_API_KEY: z.string().min(1).optional(),
  ISSUER_KEY_IDENTIFIER: z.string().min(1).optional(),
  KMS_SIGN_TIMEOUT_MS: positiveInt.default(15_000),
  KMS_SIGN_RETRY_ATTEMPTS: positiveInt.default(3),
  // NFC tag taps (docs/TAGS.md): the KMS master key of NTAG 424 DNA tags and the SDM URL the tags write.
  TAG_KEY_IDENTIFIER: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a KMS key name')
    .default('ntag424-sdm'),
  TAP_PICC_DATA_PARAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'a query parameter name')
    .default('picc_data'),
  TAP_CMAC_PARAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'a query parameter name')
    .default('cmac'),
  TAP_MAC_INPUT: z.enum(['empty', 'picc-data']).default('empty'),
  TAP_IP_HASH_SECRET: z.string().min(16).optional(),
  TAG_SIMULATOR_URL: z.url().optional(),

  WOC_NETWORK: z.enum(['main', 'test']).default('main'),
  WOC_BASE_URL: z.url().optional(),
  WOC_API_KEY: z.string().min(1).optional(),
  WOC_TIMEOUT_MS: positiveInt.default(15_000),
  WOC_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  WOC_REQUESTS_PER_SECOND: z.coerce.number().positive().optional(),
  CHAIN_FOLLOWER_POLL_SECONDS: positiveInt.max(3_600).default(30),
  CHAIN_FOLLOWER_BATCH_SIZE: positiveInt.max(1_000).default(100),
  CHAIN_FOLLOWER_START_HEIGHT: z.coerce.number().int().min(0).optional(),
  CHAIN_FOLLOWER_BACKFILL_BLOCKS: z.coerce.number().int().min(0).max(100_000).default(1_000),
  CHAIN_FOLLOWER_MAX_REORG_DEPTH: positiveInt.max(1_000).default(100),
  VERIFY_CACHE_SECONDS: z.coerce.number().int().min(0).max(3_600).default(300),
  VERIFY_CACHE_MAX_ENTRIES: positiveInt.max(10_000_000).default(100_000),
  // The public patch page (docs/API.md#the-patch-page): the explorer link and the product image proxy.
  EXPLORER_TX_URL: z
    .string()
    .refine((v) => v === 'none' || (/^https?:\/\/[^\s]+$/.test(v) && v.includes('{txid}')), 'an http(s) URL containing {txid}, or none')
    .optional(),
  PRODUCT_IMAGE_HOSTS: commaList.default([]),
  PRODUCT_IMAGE_MAX_BYTES: positiveInt.max(10_000_000).default(1_000_000),
  PRODUCT_IMAGE_CACHE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(3_600),
  PRODUCT_IMAGE_ALLOW_LOCAL: boolean.default(false),

  // UTXO pool. The second of each pair is a legacy alias, read so existing environment files keep working.
  UTXO_FUNDING_KEY_IDENTIFIER: z.string().min(1).max(80).optional(),
  FUNDING_KEY_IDENTIFIER: z.string().min(1).max(80).optional(),
  UTXO_FUNDING_ADDRESS: z.string().min(1).optional(),
  FUNDING_ADDRESS: z.string().min(1).optional(),
  // The runbook's pin of the funding key's public key; the worker checks the KMS serves this key at start.
  FUNDING_PUBKEY_HEX: z
    .string()
    .regex(/^0[23][0-9a-fA-F]{64}$/, 'a 33-byte compressed SEC public key: 66 hex digits starting 02 or 03')
    .optional(),
  UTXO_CHANGE_ADDRESS: z.string().min(1).optional(),
  CHANGE_ADDRESS: z.string().min(1).optional(),
  UTXO_CHANGE_KEY_IDENTIFIER: z.string().min(1).max(80).optional(),
  UTXO_MIN_POOL: positiveInt.optional(),
  MIN_UTXO_COUNT: positiveInt.optional(),
  UTXO_SPLIT_SIZE_SATS: positiveInt.default(5_000),
  MAX_SPLIT_OUTPUTS: positiveInt.max(10_000).default(40),
  DUST_THRESHOLD_SATS: positiveInt.default(2_000),
  DUST_SWEEP_LIMIT: positiveInt.default(20),
  UTXO_MIN_CONFIRMATIONS: z.coerce.number().int().min(0).max(100).default(1),
  FEE_PER_KB: z.coerce.number().min(0).max(100_000).default(100),
  SWEEP_MAX_INPUTS: positiveInt.max(10_000).default(1_000),
  UTXO_TOPUP_EVERY: z
    .string()
    .regex(/^(off|\d+\s*(s|m|h|d))$/, 'a duration such as 15m, or off')
    .default('15m'),
  UTXO_SWEEP_CRON: z
    .string()
    .regex(/^(off|(\S+\s+){4}\S+)$/, 'a five-field cron expression such as "0 2 * * *", or off')
    .default('0 2 * * *'),
  UTXO_RECONCILE_EVERY: z
    .string()
    .regex(/^(off|\d+\s*(s|m|h|d))$/, 'a duration such as 1h, or off')
    .default('1h'),
  UTXO_SCHEDULE_TIMEZONE: z.string().min(1).default('UTC'),
  UTXO_CONFIRMATION_POLL_SECONDS: positiveInt.max(3_600).default(30),
  ANCHOR_CONFIRMATIONS: z.coerce.number().int().min(0).max(100).default(1),
  ANCHOR_MODE: z.enum(['batch', 'single']).default('batch'),
  CLAIM_INTENT_TTL_MS: positiveInt.min(10_000).max(86_400_000).default(180_000),
  ANCHOR_BATCH_MAX_RECORDS: positiveInt.max(500).default(100),
  ANCHOR_BATCH_MAX_WAIT_SECONDS: positiveInt.max(3_600).default(5),
  REGISTRATION_QUEUE_LIMIT: positiveInt.default(20_000),
  UTXO_HEALTH_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  // Owner authentication (docs/AUTH.md).
  JWT_KEYS: z.string().min(1).optional(),
  JWT_ACTIVE_KID: z.string().min(1).optional(),
  JWT_ISSUER: z.string().min(1).default('patchproof'),
  JWT_AUDIENCE: z.string().min(1).default('patchproof-api'),
  SVD_SESSION_TTL_SEC: positiveInt.max(3600).default(600),
  EMAIL_TOKEN_TTL_SEC: positiveInt.max(3600).default(900),
  SVD_CHALLENGE_TTL_SEC: positiveInt.max(600).default(180),
  SVD_CLOCK_SKEW_SEC: z.coerce.number().int().min(0).max(300).default(30),
  SVD_MAX_PENDING_CHALLENGES: positiveInt.max(100).default(5),
  SVD_USE_KMS: boolean.optional(),
  SVD_KMS_KID: z.string().min(1).default('svd'),
  SVD_SERVER_PMS_WIF: z.string().min(1).optional(),
  SVD_RATE_WINDOW_MS: positiveInt.default(60_000),
  SVD_RATE_MAX_PER_IP: positiveInt.default(30),
  SVD_RATE_MAX_PER_USER: positiveInt.default(10),
  EMAIL_CODE_RATE_WINDOW_MS: positiveInt.default(600_000),
  EMAIL_CODE_RATE_MAX_PER_IP: positiveInt.default(20),
  EMAIL_CODE_RATE_MAX_PER_IDENTIFIER: positiveInt.default(5),
  VERIFY_CODE_SALT_ROUNDS: z.coerce.number().int().min(4).max(15).default(10),
  VERIFY_CODE_MAX_ATTEMPTS: positiveInt.max(20).default(5),
  SMTP_HOST: z.string().min(1).optional(),
  SMTP_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  SMTP_SECURE: boolean.optional(),
  SMTP_USER: z.string().min(1).optional(),
  SMTP_PASS: z.string().min(1).optional(),
  EMAIL_FROM: z.string().min(3).default('PatchProof <no-reply@patchproof.local>'),
  // Backups (docs/OPERATIONS.md#backups).
  BACKUP_DIR: z.string().min(1).optional(),
  BACKUP_CRON: z
    .string()
    .regex(/^(off|(\S+\s+){4}\S+)$/, 'a five-field cron expression such as "30 1 * * *", or off')
    .default('30 1 * * *'),
  BACKUP_RESTORE_CHECK_CRON: z
    .string()
    .regex(/^(off|(\S+\s+){4}\S+)$/, 'a five-field cron expression such as "0 4 1 1,4,7,10 *", or off')
    .default('0 4 1 1,4,7,10 *'),
  BACKUP_RETAIN_DAILY: z.coerce.number().int().min(1).max(366).default(7),
  BACKUP_RETAIN_WEEKLY: z.coerce.number().int().min(0).max(520).default(4),
  BACKUP_RETAIN_MONTHLY: z.coerce.number().int().min(0).max(240).default(12),
  // Workflow history archive (docs/OPERATIONS.md#workflow-histories-for-auditors).
  HISTORY_ARCHIVE_EVERY: z
    .string()
    .regex(/^(off|\d+\s*(s|m|h|d))$/, 'a duration such as 1h, or off')
    .default('1h'),
  HISTORY_ARCHIVE_BATCH: z.coerce.number().int().min(1).max(1000).default(100),
  HISTORY_ARCHIVE_COMPRESS_ABOVE_BYTES: z.coerce.number().int().min(0).max(16_000_000).default(65_536),
  HISTORY_ARCHIVE_SETTLE_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
  // Key rotation (docs/ROTATION.md).
  KEY_SETTINGS_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  KEY_ROTATION_GRACE_DAYS: z.coerce.number().min(0).max(365).default(7),
  KEY_ROTATION_AUTO_APPROVE_AFTER: z
    .string()
    .regex(/^(off|\d+\s*(s|m|h|d))$/, 'a duration such as 24h, or off')
    .default('off'),
  KEY_ROTATION_DISABLE_OLD_KEY: boolean.default(false),
  // Webhooks (docs/API.md#webhooks, docs/SECURITY.md#webhooks).
  WEBHOOK_ALLOW_LOOPBACK_HTTP: boolean.default(false),
  WEBHOOK_TIMEOUT_MS: positiveInt.max(60_000).default(10_000),
  WEBHOOK_MAX_RESPONSE_BYTES: positiveInt.max(1_000_000).default(65_536),
  WEBHOOK_RETRY_INITIAL_MS: positiveInt.default(30_000),
  WEBHOOK_RETRY_MAX_INTERVAL_MS: positiveInt.default(3_600_000),
  WEBHOOK_RETRY_WINDOW_HOURS: z.coerce.number().positive().max(72).default(24),
  WEBHOOK_SECRET_OVERLAP_HOURS: z.coerce.number().min(0).max(720).default(24),
});

export type RawEnv = z.infer<typeof envSchema>;

/** Names of every variable in {@link envSchema}, for the documentation test. */
export const ENV_VARIABLE_NAMES = Object.keys(envSchema.shape) as (keyof RawEnv)[];

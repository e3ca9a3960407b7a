import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { envSchema, type RawEnv } from './env';
import { addressOfPublicKey, isValidP2pkhAddress } from '../chain/addresses';
import { parsePublicKeyHex } from '../chain/ecdsa';
import { parseMongoUri, parseRedisUrl } from './urls';

export { ENV_VARIABLE_NAMES } from './env';

export type NodeEnv = RawEnv['NODE_ENV'];

export interface RateLimitConfig {
  windowMs: number;
  max: number;
}

export interface TemporalTlsConfig {
  certPath?: string;
  keyPath?: string;
  caPath?: string;
  serverName?: string;
}

export interface AppConfig {
  env: NodeEnv;
  isProduction: boolean;
  deploySha: string;
  log: { level: RawEnv['LOG_LEVEL']; format: 'json' | 'pretty'; accessLog: boolean };
  http: {
    port: number;
    bind: string;
    trustProxy: string | number | boolean;
    publicBaseUrl?: string;
    corsAllowedOrigins: string[];
    jsonBodyLimit: string;
    /** The largest body of POST /v1/patch-batches (up to 10,000 items). */
    batchBodyLimit: string;
    /** Most items one batch may hold (at most 10,000, the bulk registration's design limit). */
    batchMaxItems: number;
    /** Batch bodies one API process reads and checks at once (BATCH_MAX_CONCURRENT); another gets 429. */
    batchMaxConcurrent: number;
    swaggerDocs: boolean;
    metricsRequireApiKey: boolean;
    shutdownTimeoutMs: number;
    rateLimits: { public: RateLimitConfig; admin: RateLimitConfig };
  };
  /** `apiKey`: the bootstrap API_KEY (admin of the default tenant); empty when unset. */
  auth: { apiKey: string; jwtSecret: string };
  /** Stored, scoped API keys (src/tenancy). */
  apiKeys: {
    /** How long an API process keeps a key's document: revocation takes effect within it. */
    cacheMs: number;
    /** The per-key request limit, unless the key sets its own `max`. */
    rateLimit: RateLimitConfig;
    registrationsPerDay: number;
    rotationOverlapMs: number;
    /** Patch exports one API process streams at once: each holds a database cursor (and, on FerretDB, a connection). */
    maxConcurrentExports: number;
  };
  /** Key material for unlockable content, encrypted at rest (HKDF per patch, AES-256-GCM). */
  unlock: { contentSecret: string };
  mongo: {
    uri: string;
    serverSelectionTimeoutMs: number;
    connectTimeoutMs: number;
    socketTimeoutMs: number;
    /** Statements per bulk-write command on FerretDB, below its connection pool (src/db/bulkWrites.ts). */
    maxStatementsPerCommand: number;
  };
  redis: { url: string; password?: string };
  /**
   * Deadlines of the API's calls to its stores (docs/CONFIGURATION.md, "Request deadlines"): a stalled dependency
   * gives a fast, documented answer instead of a hanging request.
   */
  deadlines: {
    redisCommandMs: number;
    rateLimitMs: number;
    mongoOperationMs: number;
    temporalCallMs: number;
    /** The most verification and POST /v1/patches may take in all before they answer 503. */
    requestMs: number;
    /** Consecutive timeouts or connection failures that open a dependency's circuit. */
    circuitFailureThreshold: number;
    /** How long an open circuit refuses calls before it lets calls through again as probes. */
    circuitOpenMs: number;
  };
  temporal: {
    address: string;
    namespace: string;
    apiKey?: string;
    tls?: TemporalTlsConfig;
    metricsBindAddress: string;
    /** Temporal Web UI, for links printed by the CLI; the dev server's UI outside production. */
    uiUrl?: string;
  };
  worker: {
    metricsPort: number;
    /** Address the workers' /metrics and /health listen on: 127.0.0.1, or a private interface for a remote Prometheus. */
    metricsHost: string;
    /** Port of the email worker's own /metrics and /health (127.0.0.1). */
    emailMetricsPort: number;
    /** The main worker process also runs the email task queue's worker (one process instead of two). */
    emailInMain: boolean;
    /** How often the main worker reads its namespace's schedules into the schedule metrics. */
    scheduleMetricsIntervalSec: number;
    shutdownGraceMs: number;
    shutdownForceMs: number;
    /** Workflows whose state the main worker keeps in memory (WORKER_MAX_CACHED_WORKFLOWS); the rest replay on their next task. */
    maxCachedWorkflows: number;
    workflowBundlePath?: string;
    /**
     * Test only (NODE_ENV=test): a module whose `activityInterceptors` export the main worker adds to its activity
     * interceptors, e.g. the crash matrix's SIGKILL at an activity boundary. Refused in every other environment.
     */
    testInterceptorModule?: string;
    /** Interval of the system-check schedule, or null when it is switched off. */
    systemCheckEvery: string | null;
    /**
     * Worker Deployment versioning (docs/DEPLOY.md): absent, the workers are unversioned and every worker takes
     * every task; set, they poll as `deploymentName`/`buildId` and take only the tasks the server routes there.
     */
    versioning?: WorkerVersioningConfig;
  };
  kms: { signUrl: string; apiKey: string; issuerKeyIdentifier: string; timeoutMs: number; retryAttempts: number };
  /** NFC tags (docs/TAGS.md): the master key name, the tap URL's parameters and what its MAC covers. */
  tags: {
    keyIdentifier: string;
    piccDataParam: string;
    cmacParam: string;
    macInput: 'empty' | 'picc-data';
    /** Key of the tap events' client-address hash. */
    ipHashKey: Buffer;
    /** The dev tag simulator (`patchproof tag simulate`). */
    simulatorUrl: string;
  };
  pool: PoolConfig;
  /**
   * Confirmations after which a registration counts as anchored; batch mode collects records for up to
   * `batchMaxWaitSeconds` or `batchMaxRecords` and anchors one Merkle root for them all.
   */
  anchoring: {
    confirmations: number;
    mode: 'batch' | 'single';
    batchMaxRecords: number;
    batchMaxWaitSeconds: number;
    /** Registrations that may wait to be anchored before new ones are refused with 503 and Retry-After. */
    queueLimit: number;
  };
  /** Point-of-sale claims: how far ahead a customer's signed intent may expire (it waits that long for approval). */
  claims: { intentTtlMs: number };
  /**
   * The chain follower (one workflow per network): headers and anchor-tx proofs in MongoDB, which verification
   * reads instead of asking the chain service. See docs/OPERATIONS.md.
   */
  chainFollower: {
    pollSeconds: number;
    batchSize: number;
    startHeight?: number;
    backfillBlocks: number;
    maxReorgDepth: number;
  };
  /** Settled verification answers kept in each API process (api/verdictCache.ts); ttlMs 0 turns it off. */
  verification: { cacheTtlMs: number; cacheMaxEntries: number };
  /** The public patch page (src/patchPage). */
  patchPage: PatchPageConfig;
  webhooks: WebhookConfig;
  woc: {
    network: 'main' | 'test';
    /** Root of the WhatsOnChain-compatible API; `/v1/bsv/<network>` is appended. */
    baseUrl: string;
    apiKey?: string;
    timeoutMs: number;
    /** Retries after the first attempt. */
    retries: number;
    /** Client-side request rate: WhatsOnChain allows about 3/s without an API key. */
    requestsPerSecond: number;
  };
  ownerAuth: OwnerAuthConfig;
  backup: BackupConfig;
  rotation: RotationConfig;
  historyArchive: HistoryArchiveConfig;
}

/** Export of closed workflow histories to MongoDB, so they outlive the namespace retention. */
export interface HistoryArchiveConfig {
  /** Interval of the archive schedule, or null when switched off. */
  every: string | null;
  /** Histories one activity call archives at most. */
  batch: number;
  /** History JSON above this size is stored gzip-compressed (base64). */
  compressAboveBytes: number;
  /** Executions closed less than this long ago wait for the next run (visibility may list them late). */
  settleSeconds: number;
}

/** Nightly backups and the quarterly restore check (docs/OPERATIONS.md#backups). */
export interface WorkerVersioningConfig {
  deploymentName: string;
  /** WORKER_BUILD_ID, else DEPLOY_SHA: one build id per release. */
  buildId: string;
  /** What a workflow started on this version does when a newer version becomes current. */
  defaultBehavior: 'PINNED' | 'AUTO_UPGRADE';
}

export interface BackupConfig {
  /** Directory that holds one folder per backup. */
  dir: string;
  /** Cron of the nightly backup (UTC), or null when switched off. */
  cron: string | null;
  /** Cron of the restore check (UTC), or null when switched off. */
  restoreCheckCron: string | null;
  retention: { daily: number; weekly: number; monthly: number };
}

/** Key rotation (docs/ROTATION.md): how fast processes see a cutover, and the rotation workflows' defaults. */
export interface RotationConfig {
  /** How long a process caches the key settings; rotations wait longer than this between steps. */
  cacheMs: number;
  /** Days the old key keeps verifying after a cutover. */
  graceDays: number;
  /** Duration after which a KMS rotation approves itself, or null: it waits for an operator. */
  autoApproveAfter: string | null;
  /** Whether a KMS rotation asks the KMS to disable the old key when it retires it. */
  disableOldKeyInKms: boolean;
}

/** Owner authentication: JWT keyring, SVD, email codes and the email worker's SMTP (docs/AUTH.md). */
export interface OwnerAuthConfig {
  jwt: {
    /** Every key that may verify, by kid; removing a kid retires it. */
    keys: Record<string, string>;
    /** The kid that signs new tokens. */
    activeKid: string;
    issuer: string;
    audience: string;
    svdSessionTtlSec: number;
    emailTokenTtlSec: number;
  };
  svd: {
    challengeTtlSec: number;
    clockSkewSec: number;
    maxPendingChallenges: number;
    /** 'kms' derives the session secret through the KMS; 'local' (dev and tests only) with a local server key. */
    mode: 'kms' | 'local';
    kmsKeyIdentifier: string;
    localPmsWif?: string;
  };
  rateLimits: {
    svd: { windowMs: number; maxPerIp: number; maxPerUser: number };
    emailCode: { windowMs: number; maxPerIp: number; maxPerIdentifier: number };
  };
  codes: { saltRounds: number; maxAttempts: number };
  smtp: { host?: string; port: number; secure: boolean; user?: string; pass?: string; from: string };
}

/**
 * The UTXO pool. Addresses are optional: unset, each is derived from its KMS key's public key; set, the pool checks
 * that it belongs to that key before spending. The numeric settings are defaults that the `settings` collection
 * may override at run time (see src/pool/settings.ts); keys and addresses are never overridable there.
 */
export interface PoolConfig {
  fundingKeyIdentifier: string;
  fundingAddress?: string;
  /**
   * FUNDING_PUBKEY_HEX: the compressed public key the KMS must serve for `fundingKeyIdentifier` (lower-case hex);
   * the worker refuses to start on a mismatch.
   */
  fundingPubKeyHex?: string;
  changeKeyIdentifier: string;
  changeAddress?: string;
  defaults: PoolSettings;
  /** Interval of the top-up schedule, or null when switched off. */
  topUpEvery: string | null;
  /** Cron expression of the nightly sweep, or null when switched off. */
  sweepCron: string | null;
  reconcileEvery: string | null;
  scheduleTimezone: string;
  healthCacheMs: number;
}

/** Pool settings that operators may change at run time through the settings collection. */
export interface PoolSettings {
  /** UTXO_MIN_POOL: the number of spendable outputs a top-up aims for. */
  minPool: number;
  splitSizeSats: number;
  maxSplitOutputs: number;
  dustThresholdSats: number;
  dustSweepLimit: number;
  minConfirmations: number;
  feePerKb: number;
  sweepMaxInputs: number;
  confirmationPollSeconds: number;
}

/** Thrown when the environment cannot make a valid configuration. The message lists every problem at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/**
 * Values used outside production when a variable is unset. They match the dev stack (`npm run dev`) and are
 * refused in production, where every secret must be provided.
 */
export const DEV_DEFAULTS = {
  API_KEY: 'dev-api-key-not-for-production',
  JWT_SECRET: 'dev-jwt-secret-not-for-production-0000',
  MONGODB_URI: 'mongodb://127.0.0.1:27017/patchproof',
  REDIS_URL: 'redis://127.0.0.1:6379',
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  TEMPORAL_NAMESPACE: 'default',
  KMS_SIGN_URL: 'http://127.0.0.1:8090',
  KMS_API_KEY: 'dev-kms-api-key-not-for-production',
  ISSUER_KEY_IDENTIFIER: 'issuer',
  UTXO_FUNDING_KEY_IDENTIFIER: 'funding',
  UNLOCK_CONTENT_SECRET: 'dev-unlock-content-secret-not-for-production',
} as const;

/** The chain simulator in dev and tests; production talks to WhatsOnChain itself. */
export const DEV_WOC_BASE_URL = 'http://127.0.0.1:8091';
/** The Temporal dev server's Web UI (`npm run dev`). */
export const DEV_TEMPORAL_UI_URL = 'http://127.0.0.1:8233';
/** Where backups go when BACKUP_DIR is unset: the dev stack's data folder, or the system's backup folder. */
export const DEV_BACKUP_DIR = '.data/backups';
export const PRODUCTION_BACKUP_DIR = '/var/backups/patchproof';
export const PRODUCTION_WOC_BASE_URL = 'https://api.whatsonchain.com';

const MIN_SECRET_LENGTH = 32;

type Env = Record<string, string | undefined>;

/** The environment as parsed, with the problems found so far; every section check adds to the same list. */
interface ParsedEnv {
  raw: RawEnv;
  isProduction: boolean;
  /** Variables that failed to parse; their problem is already listed. */
  invalid: Set<string>;
  problems: string[];
}

/** The values that have a development default and are required in production. */
interface RequiredValues {
  apiKey: string;
  jwtSecret: string;
  unlockContentSecret: string;
  mongoUri: string;
  redisUrl: string;
  temporalAddress: string;
  temporalNamespace: string;
  kmsSignUrl: string;
  kmsApiKey: string;
  issuerKeyIdentifier: string;
  fundingKeyIdentifier: string;
}

/** The pool's optional addresses and funding key, checked against the network and each other. */
interface PoolKeys {
  fundingAddress?: string;
  changeAddress?: string;
  fundingPubKeyHex?: string;
}

/** Builds the configuration once at start. In production it fails with one message that names everything wrong. */
export function loadConfig(env: Env = process.env): AppConfig {
  // Empty strings count as unset, as systemd EnvironmentFile lines such as `API_KEY=` intend.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const { raw, problems, invalid } = parseEachVariable(cleaned);
  const parsed: ParsedEnv = { raw, isProduction: raw.NODE_ENV === 'production', invalid, problems };

  // Every check runs before any failure is reported, so one ConfigError names every problem.
  const required = requiredValues(parsed);
  const poolKeys = checkPoolKeys(parsed);
  checkStoreUrls(parsed, required);
  checkProductionSecrets(parsed, required);
  checkTemporalSecurity(parsed);
  checkMongoTlsFiles(parsed, required);
  const jwtKeyring = parseJwtKeyring(raw.JWT_KEYS, required.jwtSecret, raw.JWT_ACTIVE_KID, parsed.isProduction, problems);
  const svdMode = checkSvdMode(parsed);
  checkTestHooks(parsed);
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    env: raw.NODE_ENV,
    isProduction: parsed.isProduction,
    deploySha: raw.DEPLOY_SHA,
    log: logSection(parsed),
    http: httpSection(parsed),
    auth: { apiKey: required.apiKey, jwtSecret: required.jwtSecret },
    apiKeys: {
      cacheMs: raw.API_KEY_CACHE_MS,
      rateLimit: { windowMs: raw.API_KEY_RATE_WINDOW_MS, max: raw.API_KEY_RATE_MAX },
      registrationsPerDay: raw.API_KEY_REGISTRATIONS_PER_DAY,
      rotationOverlapMs: raw.API_KEY_ROTATION_OVERLAP_HOURS * 3_600_000,
      maxConcurrentExports: raw.EXPORT_MAX_CONCURRENT,
    },
    unlock: { contentSecret: required.unlockContentSecret },
    mongo: mongoSection(parsed, required),
    redis: { url: required.redisUrl, ...(raw.REDIS_PASSWORD && { password: raw.REDIS_PASSWORD }) },
    deadlines: {
      redisCommandMs: raw.REDIS_COMMAND_TIMEOUT_MS,
      rateLimitMs: raw.RATE_LIMIT_TIMEOUT_MS,
      mongoOperationMs: raw.DB_REQUEST_TIMEOUT_MS,
      temporalCallMs: raw.TEMPORAL_REQUEST_TIMEOUT_MS,
      requestMs: raw.REQUEST_DEADLINE_MS,
      circuitFailureThreshold: raw.CIRCUIT_FAILURE_THRESHOLD,
      circuitOpenMs: raw.CIRCUIT_OPEN_MS,
    },
    temporal: temporalSection(parsed, required),
    worker: workerSection(parsed),
    kms: kmsSection(parsed, required),
    tags: tagsSection(parsed, required),
    pool: poolSection(parsed, required, poolKeys),
    anchoring: anchoringSection(parsed),
    claims: { intentTtlMs: raw.CLAIM_INTENT_TTL_MS },
    chainFollower: {
      pollSeconds: raw.CHAIN_FOLLOWER_POLL_SECONDS,
      batchSize: raw.CHAIN_FOLLOWER_BATCH_SIZE,
      ...(raw.CHAIN_FOLLOWER_START_HEIGHT !== undefined && { startHeight: raw.CHAIN_FOLLOWER_START_HEIGHT }),
      backfillBlocks: raw.CHAIN_FOLLOWER_BACKFILL_BLOCKS,
      maxReorgDepth: raw.CHAIN_FOLLOWER_MAX_REORG_DEPTH,
    },
    verification: { cacheTtlMs: raw.VERIFY_CACHE_SECONDS * 1000, cacheMaxEntries: raw.VERIFY_CACHE_MAX_ENTRIES },
    patchPage: patchPageSection(parsed),
    webhooks: webhookSection(parsed),
    backup: backupSection(parsed),
    woc: wocSection(parsed),
    ownerAuth: ownerAuthSection(parsed, jwtKeyring, svdMode),
    rotation: rotationSection(parsed),
    historyArchive: {
      every: offOrDuration(parsed.raw.HISTORY_ARCHIVE_EVERY),
      batch: parsed.raw.HISTORY_ARCHIVE_BATCH,
      compressAboveBytes: parsed.raw.HISTORY_ARCHIVE_COMPRESS_ABOVE_BYTES,
      settleSeconds: parsed.raw.HISTORY_ARCHIVE_SETTLE_SECONDS,
    },
  };
}

/**
 * A value with a development default: the variable (or its older alias) when set, else the default outside
 * production; production requires it and refuses the default.
 */
function pick(parsed: ParsedEnv, name: keyof typeof DEV_DEFAULTS, alias?: keyof RawEnv): string {
  const { raw, isProduction, invalid, problems } = parsed;
  const value = raw[name] ?? (alias && (raw[alias] as string | undefined));
  // A variable that failed to parse is already a problem; do not also call it missing.
  if (value === undefined && (invalid.has(name) || (alias !== undefined && invalid.has(alias)))) return '';
  if (value !== undefined) {
    if (isProduction && value === DEV_DEFAULTS[name] && name !== 'TEMPORAL_NAMESPACE') {
      problems.push(`${name}: the development default is not allowed in production`);
    }
    return value;
  }
  if (isProduction) {
    problems.push(`${name}: required in production`);
    return '';
  }
  return DEV_DEFAULTS[name];
}

function requiredValues(parsed: ParsedEnv): RequiredValues {
  return {
    apiKey: bootstrapApiKey(parsed),
    jwtSecret: pick(parsed, 'JWT_SECRET'),
    unlockContentSecret: pick(parsed, 'UNLOCK_CONTENT_SECRET', 'MASTER_SECRET'),
    mongoUri: pick(parsed, 'MONGODB_URI'),
    redisUrl: pick(parsed, 'REDIS_URL'),
    temporalAddress: pick(parsed, 'TEMPORAL_ADDRESS'),
    temporalNamespace: pick(parsed, 'TEMPORAL_NAMESPACE'),
    kmsSignUrl: pick(parsed, 'KMS_SIGN_URL'),
    kmsApiKey: pick(parsed, 'KMS_API_KEY'),
    issuerKeyIdentifier: pick(parsed, 'ISSUER_KEY_IDENTIFIER'),
    fundingKeyIdentifier: pick(parsed, 'UTXO_FUNDING_KEY_IDENTIFIER', 'FUNDING_KEY_IDENTIFIER'),
  };
}

/**
 * The bootstrap API_KEY acts as admin of the default tenant. Production runs on stored, scoped keys: API_KEY is
 * optional there, and refused unless ALLOW_BOOTSTRAP_API_KEY=true (the API then logs a warning at start).
 */
function bootstrapApiKey(parsed: ParsedEnv): string {
  const { raw, isProduction, problems } = parsed;
  if (!isProduction) return pick(parsed, 'API_KEY');
  if (raw.API_KEY === undefined) return '';
  if (!raw.ALLOW_BOOTSTRAP_API_KEY) {
    problems.push(
      'API_KEY: the bootstrap key is refused in production unless ALLOW_BOOTSTRAP_API_KEY=true (use patchproof api-keys create)',
    );
    return '';
  }
  return pick(parsed, 'API_KEY');
}

/** The pool's addresses must be P2PKH on the configured network, and FUNDING_PUBKEY_HEX must be the funding address's key. */
function checkPoolKeys({ raw, invalid, problems }: ParsedEnv): PoolKeys {
  const fundingAddress = raw.UTXO_FUNDING_ADDRESS ?? raw.FUNDING_ADDRESS;
  const changeAddress = raw.UTXO_CHANGE_ADDRESS ?? raw.CHANGE_ADDRESS;
  for (const [name, address] of [
    ['UTXO_FUNDING_ADDRESS', fundingAddress],
    ['UTXO_CHANGE_ADDRESS', changeAddress],
  ] as const) {
    if (address !== undefined && !invalid.has('WOC_NETWORK') && !isValidP2pkhAddress(address, raw.WOC_NETWORK)) {
      problems.push(`${name}: not a P2PKH address of the ${raw.WOC_NETWORK} network`);
    }
  }
  let fundingPubKeyHex: string | undefined;
  if (raw.FUNDING_PUBKEY_HEX !== undefined) {
    const parsedKey = parsePublicKeyHex(raw.FUNDING_PUBKEY_HEX, { compressedOnly: true });
    if (!parsedKey) problems.push('FUNDING_PUBKEY_HEX: not a point on secp256k1');
    else {
      fundingPubKeyHex = parsedKey.compressedHex;
      const keyAddress = addressOfPublicKey(parsedKey.key.toHash() as number[], raw.WOC_NETWORK);
      if (fundingAddress !== undefined && !invalid.has('WOC_NETWORK') && fundingAddress !== keyAddress) {
        problems.push(`FUNDING_PUBKEY_HEX: its ${raw.WOC_NETWORK} address is not UTXO_FUNDING_ADDRESS`);
      }
    }
  }
  if (changeAddress !== undefined && changeAddress !== fundingAddress && raw.UTXO_CHANGE_KEY_IDENTIFIER === undefined) {
    problems.push('UTXO_CHANGE_KEY_IDENTIFIER: required when UTXO_CHANGE_ADDRESS differs from the funding address');
  }
  return { fundingAddress, changeAddress, fundingPubKeyHex };
}

/** MongoDB and Redis URLs must parse; in production both stores must require credentials. */
function checkStoreUrls({ raw, isProduction, problems }: ParsedEnv, { mongoUri, redisUrl }: RequiredValues): void {
  if (mongoUri) {
    const mongo = parseMongoUri(mongoUri);
    if (!mongo) problems.push('MONGODB_URI: not a mongodb:// or mongodb+srv:// URI');
    else if (isProduction && !mongo.hasCredentials) problems.push('MONGODB_URI: must carry credentials in production');
  }
  if (redisUrl) {
    const redis = parseRedisUrl(redisUrl);
    if (!redis) problems.push('REDIS_URL: not a redis:// or rediss:// URL');
    else if (isProduction && !redis.hasPassword && !raw.REDIS_PASSWORD) {
      problems.push('REDIS_URL: Redis must require auth in production (a password in the URL or REDIS_PASSWORD)');
    }
  }
}

/** Production secrets must be long enough, and the KMS must be reached over https. */
function checkProductionSecrets({ isProduction, problems }: ParsedEnv, required: RequiredValues): void {
  if (!isProduction) return;
  const { apiKey, jwtSecret, unlockContentSecret, kmsSignUrl } = required;
  if (apiKey && apiKey.length < MIN_SECRET_LENGTH) problems.push(`API_KEY: must be at least ${MIN_SECRET_LENGTH} characters`);
  if (jwtSecret && jwtSecret.length < MIN_SECRET_LENGTH) problems.push(`JWT_SECRET: must be at least ${MIN_SECRET_LENGTH} characters`);
  if (unlockContentSecret && unlockContentSecret.length < MIN_SECRET_LENGTH) {
    problems.push(`UNLOCK_CONTENT_SECRET: must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  if (kmsSignUrl && !kmsSignUrl.startsWith('https://')) problems.push('KMS_SIGN_URL: must be https:// in production');
}

/** True when the Temporal connection is to use TLS: asked for, or implied by an API key or a client certificate. */
function temporalTlsWanted(raw: RawEnv): boolean {
  return raw.TEMPORAL_TLS || raw.TEMPORAL_API_KEY !== undefined || raw.TEMPORAL_TLS_CERT_PATH !== undefined;
}

/** Production talks to Temporal over TLS or with an API key unless told the cluster is private; mTLS needs both files. */
function checkTemporalSecurity({ raw, isProduction, problems }: ParsedEnv): void {
  if (isProduction && !temporalTlsWanted(raw) && !raw.TEMPORAL_INSECURE) {
    problems.push(
      'TEMPORAL_TLS / TEMPORAL_API_KEY: production needs TLS or an API key (or TEMPORAL_INSECURE=true for a private plaintext cluster)',
    );
  }
  if ((raw.TEMPORAL_TLS_CERT_PATH === undefined) !== (raw.TEMPORAL_TLS_KEY_PATH === undefined)) {
    problems.push('TEMPORAL_TLS_CERT_PATH / TEMPORAL_TLS_KEY_PATH: set both for mTLS, or neither');
  }
  for (const name of ['TEMPORAL_TLS_CERT_PATH', 'TEMPORAL_TLS_KEY_PATH', 'TEMPORAL_TLS_CA_PATH'] as const) {
    const file = raw[name];
    if (file !== undefined && !readable(file)) problems.push(`${name}: ${file} is missing or not readable`);
  }
  if (raw.WORKER_BUILD_ID !== undefined && raw.WORKER_DEPLOYMENT_NAME === undefined) {
    problems.push('WORKER_BUILD_ID: only used with WORKER_DEPLOYMENT_NAME (worker versioning); set both or neither');
  }
}

/** Certificate files named in the MongoDB URI (tlsCAFile, tlsCertificateKeyFile) must be there at start too. */
function checkMongoTlsFiles({ problems }: ParsedEnv, { mongoUri }: RequiredValues): void {
  const query = mongoUri.split('?')[1];
  if (!query) return;
  const params = new URLSearchParams(query);
  for (const name of ['tlsCAFile', 'tlsCertificateKeyFile']) {
    const file = params.get(name);
    if (file !== null && !readable(file)) problems.push(`MONGODB_URI ${name}: ${file} is missing or not readable`);
  }
}

// Start-up validation reads the file system once so a missing certificate is named with every other problem.
function readable(file: string): boolean {
  try {
    accessSync(file, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** SVD secrets come from the KMS in production; a local server key is for dev and tests only. */
function checkSvdMode({ raw, isProduction, problems }: ParsedEnv): OwnerAuthConfig['svd']['mode'] {
  const svdMode = raw.SVD_USE_KMS === true || (isProduction && raw.SVD_USE_KMS !== false) ? 'kms' : 'local';
  if (isProduction && svdMode !== 'kms') problems.push('SVD_USE_KMS: production derives SVD secrets through the KMS only');
  if (isProduction && raw.SVD_SERVER_PMS_WIF) problems.push('SVD_SERVER_PMS_WIF: a local SVD server key is refused in production');
  return svdMode;
}

/** Where the page links an anchor tx by default: the explorer of the configured network. */
export const DEFAULT_EXPLORER_TX_URL = {
  main: 'https://whatsonchain.com/tx/{txid}',
  test: 'https://test.whatsonchain.com/tx/{txid}',
} as const;

export interface PatchPageConfig {
  /** Template of an anchor tx's explorer link (`{txid}` replaced); null shows the txid without a link. */
  explorerTxUrl: string | null;
  /** The product image proxy: images are fetched only from these hosts, size-limited and kept in memory. */
  image: { hosts: string[]; maxBytes: number; cacheTtlMs: number; allowLocal: boolean };
}

function patchPageSection({ raw, isProduction, problems }: ParsedEnv): PatchPageConfig {
  // Plain http and loopback or private addresses are for dev and tests, where the image server is local.
  if (isProduction && raw.PRODUCT_IMAGE_ALLOW_LOCAL) problems.push('PRODUCT_IMAGE_ALLOW_LOCAL: refused in production');
  const explorer = raw.EXPLORER_TX_URL ?? DEFAULT_EXPLORER_TX_URL[raw.WOC_NETWORK];
  return {
    explorerTxUrl: explorer === 'none' ? null : explorer,
    image: {
      hosts: raw.PRODUCT_IMAGE_HOSTS.map((h) => h.toLowerCase()),
      maxBytes: raw.PRODUCT_IMAGE_MAX_BYTES,
      cacheTtlMs: raw.PRODUCT_IMAGE_CACHE_SECONDS * 1000,
      allowLocal: raw.PRODUCT_IMAGE_ALLOW_LOCAL,
    },
  };
}

export interface WebhookConfig {
  /** Dev and tests only: http and loopback addresses (never private ones) for a local receiver. */
  allowLoopbackHttp: boolean;
  timeoutMs: number;
  maxResponseBytes: number;
  /** Backoff of a delivery's attempts: first interval, doubling up to the maximum, for up to the window. */
  retry: { initialIntervalMs: number; maximumIntervalMs: number; windowMs: number };
  /** How long the previous signing secret stays valid after a rotation. */
  secretOverlapMs: number;
}

function webhookSection({ raw, isProduction, problems }: ParsedEnv): WebhookConfig {
  if (isProduction && raw.WEBHOOK_ALLOW_LOOPBACK_HTTP) problems.push('WEBHOOK_ALLOW_LOOPBACK_HTTP: refused in production');
  return {
    allowLoopbackHttp: raw.WEBHOOK_ALLOW_LOOPBACK_HTTP,
    timeoutMs: raw.WEBHOOK_TIMEOUT_MS,
    maxResponseBytes: raw.WEBHOOK_MAX_RESPONSE_BYTES,
    retry: {
      initialIntervalMs: raw.WEBHOOK_RETRY_INITIAL_MS,
      maximumIntervalMs: raw.WEBHOOK_RETRY_MAX_INTERVAL_MS,
      windowMs: Math.round(raw.WEBHOOK_RETRY_WINDOW_HOURS * 3_600_000),
    },
    secretOverlapMs: Math.round(raw.WEBHOOK_SECRET_OVERLAP_HOURS * 3_600_000),
  };
}

function logSection({ raw, isProduction }: ParsedEnv): AppConfig['log'] {
  return { level: raw.LOG_LEVEL, format: raw.LOG_FORMAT ?? (isProduction ? 'json' : 'pretty'), accessLog: raw.ACCESS_LOG };
}

function httpSection({ raw, isProduction }: ParsedEnv): AppConfig['http'] {
  return {
    port: raw.PORT,
    bind: raw.BIND,
    trustProxy: parseTrustProxy(raw.TRUST_PROXY),
    ...(raw.PUBLIC_BASE_URL && { publicBaseUrl: raw.PUBLIC_BASE_URL.replace(/\/+$/, '') }),
    corsAllowedOrigins: raw.CORS_ALLOWED_ORIGINS,
    jsonBodyLimit: raw.JSON_BODY_LIMIT,
    batchBodyLimit: raw.BATCH_BODY_LIMIT,
    batchMaxItems: raw.BATCH_MAX_ITEMS,
    batchMaxConcurrent: raw.BATCH_MAX_CONCURRENT,
    swaggerDocs: raw.ENABLE_SWAGGER_DOCS,
    // /metrics names routes, dependencies and key ids: production gates it behind the API key unless told otherwise.
    metricsRequireApiKey: raw.METRICS_REQUIRE_API_KEY ?? isProduction,
    shutdownTimeoutMs: raw.SHUTDOWN_TIMEOUT_MS,
    rateLimits: {
      public: { windowMs: raw.PUBLIC_API_WINDOW_MS, max: raw.PUBLIC_API_MAX },
      admin: { windowMs: raw.ADMIN_API_WINDOW_MS, max: raw.ADMIN_API_MAX },
    },
  };
}

function mongoSection({ raw }: ParsedEnv, { mongoUri }: RequiredValues): AppConfig['mongo'] {
  return {
    uri: mongoUri,
    serverSelectionTimeoutMs: raw.DB_SERVER_SELECTION_TIMEOUT_MS,
    connectTimeoutMs: raw.DB_CONNECT_TIMEOUT_MS,
    socketTimeoutMs: raw.DB_SOCKET_TIMEOUT_MS,
    maxStatementsPerCommand: raw.DB_MAX_STATEMENTS_PER_COMMAND,
  };
}

function temporalSection({ raw, isProduction }: ParsedEnv, required: RequiredValues): AppConfig['temporal'] {
  const tls: TemporalTlsConfig | undefined = temporalTlsWanted(raw)
    ? {
        ...(raw.TEMPORAL_TLS_CERT_PATH && { certPath: raw.TEMPORAL_TLS_CERT_PATH }),
        ...(raw.TEMPORAL_TLS_KEY_PATH && { keyPath: raw.TEMPORAL_TLS_KEY_PATH }),
        ...(raw.TEMPORAL_TLS_CA_PATH && { caPath: raw.TEMPORAL_TLS_CA_PATH }),
        ...(raw.TEMPORAL_TLS_SERVER_NAME && { serverName: raw.TEMPORAL_TLS_SERVER_NAME }),
      }
    : undefined;
  return {
    address: required.temporalAddress,
    namespace: required.temporalNamespace,
    ...(raw.TEMPORAL_API_KEY && { apiKey: raw.TEMPORAL_API_KEY }),
    ...(tls && { tls }),
    metricsBindAddress: raw.TEMPORAL_METRICS_BIND_ADDRESS,
    ...((raw.TEMPORAL_UI_URL ?? (isProduction ? undefined : DEV_TEMPORAL_UI_URL)) && {
      uiUrl: (raw.TEMPORAL_UI_URL ?? DEV_TEMPORAL_UI_URL).replace(/\/+$/, ''),
    }),
  };
}

/** Test-only hooks are refused outside NODE_ENV=test rather than ignored: a production worker must not load them. */
function checkTestHooks({ raw, problems }: ParsedEnv): void {
  if (raw.WORKER_TEST_INTERCEPTOR_MODULE && raw.NODE_ENV !== 'test') {
    problems.push('WORKER_TEST_INTERCEPTOR_MODULE: test only; refused unless NODE_ENV=test');
  }
}

function workerSection({ raw }: ParsedEnv): AppConfig['worker'] {
  return {
    metricsPort: raw.WORKER_METRICS_PORT,
    metricsHost: raw.WORKER_METRICS_HOST,
    emailMetricsPort: raw.EMAIL_WORKER_METRICS_PORT,
    emailInMain: raw.EMAIL_WORKER_IN_MAIN,
    scheduleMetricsIntervalSec: raw.SCHEDULE_METRICS_INTERVAL_SEC,
    shutdownGraceMs: raw.WORKER_SHUTDOWN_GRACE_MS,
    shutdownForceMs: raw.WORKER_SHUTDOWN_FORCE_MS,
    maxCachedWorkflows: raw.WORKER_MAX_CACHED_WORKFLOWS,
    ...(raw.WORKFLOW_BUNDLE_PATH && { workflowBundlePath: raw.WORKFLOW_BUNDLE_PATH }),
    ...(raw.WORKER_TEST_INTERCEPTOR_MODULE && raw.NODE_ENV === 'test' && { testInterceptorModule: raw.WORKER_TEST_INTERCEPTOR_MODULE }),
    systemCheckEvery: offOrDuration(raw.SYSTEM_CHECK_EVERY),
    ...(raw.WORKER_DEPLOYMENT_NAME && {
      versioning: {
        deploymentName: raw.WORKER_DEPLOYMENT_NAME,
        buildId: raw.WORKER_BUILD_ID ?? raw.DEPLOY_SHA,
        defaultBehavior: raw.WORKER_VERSIONING_BEHAVIOR === 'auto-upgrade' ? 'AUTO_UPGRADE' : 'PINNED',
      },
    }),
  };
}

export const DEFAULT_TAG_SIMULATOR_URL = 'http://127.0.0.1:8092';

function tagsSection({ raw, isProduction, problems }: ParsedEnv, required: RequiredValues): AppConfig['tags'] {
  if (raw.TAP_PICC_DATA_PARAM === raw.TAP_CMAC_PARAM) problems.push('TAP_CMAC_PARAM: must differ from TAP_PICC_DATA_PARAM');
  if (isProduction && !raw.TAP_IP_HASH_SECRET) problems.push('TAP_IP_HASH_SECRET: required in production');
  // Outside production the hash key comes from the unlock secret, under its own label, so dev needs no new secret.
  const ipHashKey = raw.TAP_IP_HASH_SECRET
    ? createHash('sha256').update(raw.TAP_IP_HASH_SECRET).digest()
    : createHash('sha256').update('patchproof tap ip hash\0').update(required.unlockContentSecret).digest();
  return {
    keyIdentifier: raw.TAG_KEY_IDENTIFIER,
    piccDataParam: raw.TAP_PICC_DATA_PARAM,
    cmacParam: raw.TAP_CMAC_PARAM,
    macInput: raw.TAP_MAC_INPUT,
    ipHashKey,
    simulatorUrl: (raw.TAG_SIMULATOR_URL ?? DEFAULT_TAG_SIMULATOR_URL).replace(/\/+$/, ''),
  };
}

function kmsSection({ raw }: ParsedEnv, required: RequiredValues): AppConfig['kms'] {
  return {
    signUrl: required.kmsSignUrl.replace(/\/+$/, ''),
    apiKey: required.kmsApiKey,
    issuerKeyIdentifier: required.issuerKeyIdentifier,
    timeoutMs: raw.KMS_SIGN_TIMEOUT_MS,
    retryAttempts: raw.KMS_SIGN_RETRY_ATTEMPTS,
  };
}

function poolSection({ raw }: ParsedEnv, { fundingKeyIdentifier }: RequiredValues, keys: PoolKeys): PoolConfig {
  const { fundingAddress, changeAddress, fundingPubKeyHex } = keys;
  return {
    fundingKeyIdentifier,
    ...(fundingAddress && { fundingAddress }),
    ...(fundingPubKeyHex && { fundingPubKeyHex }),
    changeKeyIdentifier: raw.UTXO_CHANGE_KEY_IDENTIFIER ?? fundingKeyIdentifier,
    ...(changeAddress && { changeAddress }),
    defaults: {
      minPool: raw.UTXO_MIN_POOL ?? raw.MIN_UTXO_COUNT ?? 10,
      splitSizeSats: raw.UTXO_SPLIT_SIZE_SATS,
      maxSplitOutputs: raw.MAX_SPLIT_OUTPUTS,
      dustThresholdSats: raw.DUST_THRESHOLD_SATS,
      dustSweepLimit: raw.DUST_SWEEP_LIMIT,
      minConfirmations: raw.UTXO_MIN_CONFIRMATIONS,
      feePerKb: raw.FEE_PER_KB,
      sweepMaxInputs: raw.SWEEP_MAX_INPUTS,
      confirmationPollSeconds: raw.UTXO_CONFIRMATION_POLL_SECONDS,
    },
    topUpEvery: offOrDuration(raw.UTXO_TOPUP_EVERY),
    sweepCron: offOrCron(raw.UTXO_SWEEP_CRON),
    reconcileEvery: offOrDuration(raw.UTXO_RECONCILE_EVERY),
    scheduleTimezone: raw.UTXO_SCHEDULE_TIMEZONE,
    healthCacheMs: raw.UTXO_HEALTH_CACHE_MS,
  };
}

function anchoringSection({ raw }: ParsedEnv): AppConfig['anchoring'] {
  return {
    confirmations: raw.ANCHOR_CONFIRMATIONS,
    mode: raw.ANCHOR_MODE,
    batchMaxRecords: raw.ANCHOR_BATCH_MAX_RECORDS,
    batchMaxWaitSeconds: raw.ANCHOR_BATCH_MAX_WAIT_SECONDS,
    queueLimit: raw.REGISTRATION_QUEUE_LIMIT,
  };
}

function backupSection({ raw, isProduction }: ParsedEnv): BackupConfig {
  return {
    dir: raw.BACKUP_DIR ?? (isProduction ? PRODUCTION_BACKUP_DIR : DEV_BACKUP_DIR),
    cron: offOrCron(raw.BACKUP_CRON),
    restoreCheckCron: offOrCron(raw.BACKUP_RESTORE_CHECK_CRON),
    retention: { daily: raw.BACKUP_RETAIN_DAILY, weekly: raw.BACKUP_RETAIN_WEEKLY, monthly: raw.BACKUP_RETAIN_MONTHLY },
  };
}

function wocSection({ raw, isProduction }: ParsedEnv): AppConfig['woc'] {
  return {
    network: raw.WOC_NETWORK,
    baseUrl: (raw.WOC_BASE_URL ?? (isProduction ? PRODUCTION_WOC_BASE_URL : DEV_WOC_BASE_URL)).replace(/\/+$/, ''),
    ...(raw.WOC_API_KEY && { apiKey: raw.WOC_API_KEY }),
    timeoutMs: raw.WOC_TIMEOUT_MS,
    retries: raw.WOC_RETRIES,
    requestsPerSecond: raw.WOC_REQUESTS_PER_SECOND ?? (raw.WOC_API_KEY ? 20 : 3),
  };
}

function ownerAuthSection(
  { raw, isProduction }: ParsedEnv,
  jwtKeyring: { keys: Record<string, string>; activeKid: string },
  svdMode: OwnerAuthConfig['svd']['mode'],
): OwnerAuthConfig {
  return {
    jwt: {
      ...jwtKeyring,
      issuer: raw.JWT_ISSUER,
      audience: raw.JWT_AUDIENCE,
      svdSessionTtlSec: raw.SVD_SESSION_TTL_SEC,
      emailTokenTtlSec: raw.EMAIL_TOKEN_TTL_SEC,
    },
    svd: {
      challengeTtlSec: raw.SVD_CHALLENGE_TTL_SEC,
      clockSkewSec: raw.SVD_CLOCK_SKEW_SEC,
      maxPendingChallenges: raw.SVD_MAX_PENDING_CHALLENGES,
      mode: svdMode,
      kmsKeyIdentifier: raw.SVD_KMS_KID,
      ...(raw.SVD_SERVER_PMS_WIF && { localPmsWif: raw.SVD_SERVER_PMS_WIF }),
    },
    rateLimits: {
      svd: { windowMs: raw.SVD_RATE_WINDOW_MS, maxPerIp: raw.SVD_RATE_MAX_PER_IP, maxPerUser: raw.SVD_RATE_MAX_PER_USER },
      emailCode: {
        windowMs: raw.EMAIL_CODE_RATE_WINDOW_MS,
        maxPerIp: raw.EMAIL_CODE_RATE_MAX_PER_IP,
        maxPerIdentifier: raw.EMAIL_CODE_RATE_MAX_PER_IDENTIFIER,
      },
    },
    codes: { saltRounds: raw.VERIFY_CODE_SALT_ROUNDS, maxAttempts: raw.VERIFY_CODE_MAX_ATTEMPTS },
    smtp: {
      // Dev and tests talk to the SMTP capture stand-in; production names its relay (the email worker checks).
      ...((raw.SMTP_HOST ?? (isProduction ? undefined : DEV_SMTP_HOST)) && { host: raw.SMTP_HOST ?? DEV_SMTP_HOST }),
      port: raw.SMTP_PORT ?? (isProduction ? 587 : DEV_SMTP_PORT),
      secure: raw.SMTP_SECURE ?? raw.SMTP_PORT === 465,
      ...(raw.SMTP_USER && { user: raw.SMTP_USER }),
      ...(raw.SMTP_PASS && { pass: raw.SMTP_PASS }),
      from: raw.EMAIL_FROM,
    },
  };
}

function rotationSection({ raw }: ParsedEnv): RotationConfig {
  return {
    cacheMs: raw.KEY_SETTINGS_CACHE_MS,
    graceDays: raw.KEY_ROTATION_GRACE_DAYS,
    autoApproveAfter: offOrDuration(raw.KEY_ROTATION_AUTO_APPROVE_AFTER),
    disableOldKeyInKms: raw.KEY_ROTATION_DISABLE_OLD_KEY,
  };
}

/**
 * Parses every variable on its own, so that one malformed value does not hide the rest: a variable that fails is
 * reported (by name, never by value) and left at its default or unset, and the caller's rules still run on the others.
 */
function parseEachVariable(env: Env): { raw: RawEnv; problems: string[]; invalid: Set<string> } {
  const problems: string[] = [];
  const invalid = new Set<string>();
  const raw: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(envSchema.shape)) {
    const parsed = schema.safeParse(env[name]);
    if (parsed.success) {
      raw[name] = parsed.data;
      continue;
    }
    invalid.add(name);
    for (const issue of parsed.error.issues) problems.push(`${[name, ...issue.path.map(String)].join('.')}: ${issue.message}`);
    // Every variable is optional or has a default, so parsing "unset" always succeeds.
    const fallback = schema.safeParse(undefined);
    raw[name] = fallback.success ? fallback.data : undefined;
  }
  return { raw: raw as RawEnv, problems, invalid };
}

/** The SMTP capture stand-in of `npm run dev` (ops/stand-ins/smtp-capture). */
export const DEV_SMTP_HOST = '127.0.0.1';
export const DEV_SMTP_PORT = 2525;

const KID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * `JWT_KEYS` is `kid:secret,kid:secret`; without it the keyring is JWT_SECRET under kid `jwt-1`. The active kid
 * defaults to the first listed.
 */
function parseJwtKeyring(
  list: string | undefined,
  jwtSecret: string,
  activeKid: string | undefined,
  isProduction: boolean,
  problems: string[],
): { keys: Record<string, string>; activeKid: string } {
  const keys: Record<string, string> = {};
  if (list === undefined) {
    keys['jwt-1'] = jwtSecret;
  } else {
    for (const entry of list
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const at = entry.indexOf(':');
      const kid = entry.slice(0, at);
      const secret = entry.slice(at + 1);
      // Never echo the secret in a problem message.
      if (at <= 0 || !KID.test(kid) || secret.length === 0)
        problems.push('JWT_KEYS: each entry must be kid:secret (kid of A–Z, a–z, 0–9, . _ -)');
      else if (keys[kid] !== undefined) problems.push(`JWT_KEYS: kid ${kid} is listed twice`);
      else if (isProduction && secret.length < MIN_SECRET_LENGTH)
        problems.push(`JWT_KEYS: the secret of ${kid} must be at least ${MIN_SECRET_LENGTH} characters`);
      else keys[kid] = secret;
    }
  }
  const active = activeKid ?? Object.keys(keys)[0] ?? '';
  if (keys[active] === undefined) problems.push('JWT_ACTIVE_KID: must name a kid of JWT_KEYS');
  return { keys, activeKid: active };
}

function offOrDuration(value: string): string | null {
  return value === 'off' ? null : value.replace(/\s+/g, '');
}

function offOrCron(value: string): string | null {
  return value === 'off' ? null : value.trim();
}

function parseTrustProxy(value: string): string | number | boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

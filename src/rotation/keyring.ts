import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { AppConfig, OwnerAuthConfig, PoolConfig } from '../config';
import { issuerKeyRevocationModel, type IssuerKeyRevocationDocument } from '../issuerKeys/models';
import type { KeyPurpose, KmsKeyPurpose } from './ids';
import { activeKeyModel, rotationKeyId, rotationKeyModel, type KeyState, type RotationKeyDocument } from './models';

/**
 * The one place that answers "which key is active for purpose X, and which keys still verify". The environment's
 * key identifiers (ISSUER_KEY_IDENTIFIER, UTXO_FUNDING_KEY_IDENTIFIER, SVD_KMS_KID, JWT_KEYS / JWT_ACTIVE_KID) are
 * the defaults; a rotation's cutover writes the run-time key settings (src/rotation/models.ts), and every process
 * picks that up within `cacheMs` without a restart. Rotation workflows wait longer than that between steps, so no
 * process signs with a key another process does not yet accept.
 */

export interface KeyringDefaults {
  issuer: string;
  funding: string;
  svd: string;
}

export interface KeyringSnapshot {
  readAt: number;
  /** Active key per purpose as the store says; absent: the environment's default. */
  active: Partial<Record<KeyPurpose, string>>;
  keys: RotationKeyDocument[];
  /** Revoked issuer keys (src/issuerKeys): they verify only what they signed before their revocation time. */
  revocations: IssuerKeyRevocationDocument[];
}

export interface Keyring {
  readonly defaults: KeyringDefaults;
  /** The store's view, cached for `cacheMs`; concurrent callers share one read. */
  snapshot(): Promise<KeyringSnapshot>;
  /** The key identifier that signs for this purpose now. */
  activeKeyId(purpose: KmsKeyPurpose): Promise<string>;
  /** The pool configuration with the active funding key (and its address) in place of the environment's. */
  livePoolConfig(pool: PoolConfig): Promise<PoolConfig>;
  /** Drops the cache: the next read goes to the store (rotation activities call it after they write). */
  forget(): void;
}

export interface KeyringOptions {
  mongo: Connection;
  defaults: KeyringDefaults;
  cacheMs: number;
  now?: () => number;
}

/** States whose key verifies new work. */
const VERIFYING: readonly KeyState[] = ['staged', 'active', 'previous'];

export function createKeyring(options: KeyringOptions): Keyring {
  const now = options.now ?? Date.now;
  let cached: KeyringSnapshot | undefined;
  let inFlight: Promise<KeyringSnapshot> | undefined;

  async function read(): Promise<KeyringSnapshot> {
    const [pointers, keys, revocations] = await Promise.all([
      activeKeyModel(options.mongo).find({}).lean(),
      rotationKeyModel(options.mongo).find({}).lean(),
      issuerKeyRevocationModel(options.mongo).find({}).lean(),
    ]);
    const active: Partial<Record<KeyPurpose, string>> = {};
    for (const pointer of pointers) active[pointer._id] = pointer.keyIdentifier;
    return { readAt: now(), active, keys, revocations };
  }

  function snapshot(): Promise<KeyringSnapshot> {
    if (cached && now() - cached.readAt < options.cacheMs) return Promise.resolve(cached);
    inFlight ??= read().then(
      (fresh) => {
        cached = fresh;
        inFlight = undefined;
        return fresh;
      },
      (err: unknown) => {
        inFlight = undefined;
        throw err;
      },
    );
    return inFlight;
  }

  return {
    defaults: options.defaults,
    snapshot,
    async activeKeyId(purpose) {
      return (await snapshot()).active[purpose] ?? options.defaults[purpose];
    },
    async livePoolConfig(pool) {
      return livePoolConfig(pool, await snapshot());
    },
    forget() {
      cached = undefined;
    },
  };
}

/** The process's keyring: the environment's key identifiers as defaults, the key settings in `mongo` over them. */
export function keyringFromConfig(config: AppConfig, mongo: Connection): Keyring {
  return createKeyring({
    mongo,
    defaults: {
      issuer: config.kms.issuerKeyIdentifier,
      funding: config.pool.fundingKeyIdentifier,
      svd: config.ownerAuth.svd.kmsKeyIdentifier,
    },
    cacheMs: config.rotation.cacheMs,
  });
}

/**
 * The environment's pool configuration until the funding key has been rotated; after that the rotated key and the
 * address recorded for it. The change account follows the funding key when it was the funding key's own.
 */
export function livePoolConfig(pool: PoolConfig, snapshot: KeyringSnapshot): PoolConfig {
  const active = snapshot.active.funding;
  if (active === undefined || active === pool.fundingKeyIdentifier) return pool;
  const recorded = snapshot.keys.find((k) => k._id === rotationKeyId('funding', active));
  const changeFollowsFunding =
    pool.changeKeyIdentifier === pool.fundingKeyIdentifier &&
    (pool.changeAddress === undefined || pool.changeAddress === pool.fundingAddress);
  const { fundingAddress: _envFunding, changeAddress: _envChange, fundingPubKeyHex: _envFundingKey, ...rest } = pool;
  return {
    ...rest,
    fundingKeyIdentifier: active,
    ...(recorded?.address && { fundingAddress: recorded.address }),
    ...(changeFollowsFunding
      ? { changeKeyIdentifier: active, ...(recorded?.address && { changeAddress: recorded.address }) }
      : { changeKeyIdentifier: pool.changeKeyIdentifier, ...(pool.changeAddress && { changeAddress: pool.changeAddress }) }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Writes: only the rotation activities call these. Each is one single-document, idempotent write.

export interface RecordedKey {
  keyIdentifier: string;
  pubKeyHex?: string | null;
  address?: string | null;
  sealedSecret?: string | null;
}

/** Records a key in a state, keeping what was recorded before (a retry or a later rotation never loses a public key). */
export async function recordKey(
  mongo: Connection,
  purpose: KeyPurpose,
  key: RecordedKey,
  state: KeyState,
  rotationId: string,
  at: Date = new Date(),
): Promise<void> {
  const keys = rotationKeyModel(mongo);
  const _id = rotationKeyId(purpose, key.keyIdentifier);
  const existing = await keys.findById(_id).lean();
  await keys.replaceOne(
    { _id },
    {
      _id,
      purpose,
      keyIdentifier: key.keyIdentifier,
      state,
      pubKeyHex: existing?.pubKeyHex ?? key.pubKeyHex ?? null,
      address: existing?.address ?? key.address ?? null,
      sealedSecret: existing?.sealedSecret ?? key.sealedSecret ?? null,
      rotationId,
      activatedAt: state === 'active' ? (existing?.state === 'active' ? existing.activatedAt : at) : (existing?.activatedAt ?? null),
      retiredAt: state === 'retired' ? (existing?.retiredAt ?? at) : null,
      updatedAt: at,
    },
    { upsert: true },
  );
}

/** The cutover: one write of the purpose's pointer, which every process reads. */
export async function setActiveKey(mongo: Connection, purpose: KeyPurpose, keyIdentifier: string, rotationId: string): Promise<void> {
  await activeKeyModel(mongo).replaceOne(
    { _id: purpose },
    { _id: purpose, keyIdentifier, since: new Date(), rotationId },
    { upsert: true },
  );
}

export async function readKey(mongo: Connection, purpose: KeyPurpose, keyIdentifier: string): Promise<RotationKeyDocument | null> {
  return rotationKeyModel(mongo).findById(rotationKeyId(purpose, keyIdentifier)).lean();
}

export async function listKeys(mongo: Connection): Promise<RotationKeyDocument[]> {
  return rotationKeyModel(mongo).find({}).sort({ purpose: 1, updatedAt: 1 }).lean();
}

// ---------------------------------------------------------------------------------------------------------------
// JWT keys. Their secrets are HMAC keys that every API process needs, so a rotated kid's secret lives in the store,
// sealed under a key derived from JWT_SECRET: reading the database alone does not let anyone mint tokens.

const SEAL_INFO = 'patchproof jwt keyring seal v1';

function sealingKey(jwtSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', jwtSecret, 'patchproof', SEAL_INFO, 32));
}

export function sealJwtSecret(secret: string, jwtSecret: string, kid: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(jwtSecret), iv);
  // The kid is bound as associated data, so a sealed secret cannot be moved under another kid.
  cipher.setAAD(Buffer.from(kid));
  const data = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url')).join('.');
}

export function unsealJwtSecret(sealed: string, jwtSecret: string, kid: string): string {
  const [iv, tag, data] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
  if (!iv || !tag || !data) throw new Error(`sealed secret of ${kid} is malformed`);
  const decipher = createDecipheriv('aes-256-gcm', sealingKey(jwtSecret), iv);
  decipher.setAAD(Buffer.from(kid));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
}

export function newJwtSecret(): string {
  return randomBytes(48).toString('base64url');
}

export interface JwtKeysState {
  keys: Record<string, string>;
  activeKid: string;
}

/**
 * The JWT keyring in effect: the environment's kids minus the retired ones, plus the rotated kids that verify;
 * the store's active kid when its secret is at hand, otherwise the environment's.
 */
export function jwtKeysState(
  env: Pick<OwnerAuthConfig['jwt'], 'keys' | 'activeKid'>,
  snapshot: KeyringSnapshot,
  jwtSecret: string,
  onUnsealFailure?: (kid: string) => void,
): JwtKeysState {
  const keys: Record<string, string> = { ...env.keys };
  for (const key of snapshot.keys) {
    if (key.purpose !== 'jwt') continue;
    if (!VERIFYING.includes(key.state)) {
      delete keys[key.keyIdentifier];
      continue;
    }
    if (keys[key.keyIdentifier] !== undefined || !key.sealedSecret) continue;
    try {
      keys[key.keyIdentifier] = unsealJwtSecret(key.sealedSecret, jwtSecret, key.keyIdentifier);
    } catch {
      onUnsealFailure?.(key.keyIdentifier);
    }
  }
  const stored = snapshot.active.jwt;
  const activeKid = stored !== undefined && keys[stored] !== undefined ? stored : env.activeKid;
  return { keys, activeKid };
}

/**
 * A JWT keyring view that the token code reads synchronously and that refreshes itself from the store every
 * `cacheMs` (timer unref'd, so it never holds a process open). Until the first read it is the environment's.
 */
export interface LiveJwtKeys {
  current(): JwtKeysState;
  refresh(): Promise<void>;
  stop(): void;
}

export function createLiveJwtKeys(options: {
  keyring: Keyring;
  env: Pick<OwnerAuthConfig['jwt'], 'keys' | 'activeKid'>;
  jwtSecret: string;
  /** Starts the refresh timer; false where there is no database (the OpenAPI generator's placeholders). */
  autoRefresh: boolean;
  refreshMs: number;
  onError?: (err: unknown) => void;
}): LiveJwtKeys {
  let state: JwtKeysState = { keys: { ...options.env.keys }, activeKid: options.env.activeKid };
  const refresh = async () => {
    options.keyring.forget();
    state = jwtKeysState(options.env, await options.keyring.snapshot(), options.jwtSecret, (kid) =>
      options.onError?.(new Error(`the sealed secret of JWT kid ${kid} cannot be opened with this JWT_SECRET`)),
    );
  };
  let timer: NodeJS.Timeout | undefined;
  if (options.autoRefresh) {
    void refresh().catch((err: unknown) => options.onError?.(err));
    timer = setInterval(() => void refresh().catch((err: unknown) => options.onError?.(err)), Math.max(250, options.refreshMs));
    timer.unref();
  }
  return {
    current: () => state,
    refresh,
    stop: () => {
      if (timer) clearInterval(timer);
    },
  };
}

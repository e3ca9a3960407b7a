import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PrivateKey } from '@bsv/sdk';
import { DomainError } from '../../../src/errors';
import type { Logger } from '../../../src/logging/logger';

/**
 * Keys of the dev KMS, on local disk: one JSON file per key name holding every version. Dev and tests only; a real
 * KMS never lets a private key out, and this one only lets it out to its own disk (mode 0600 in a 0700 directory).
 */

export const KEY_FILE_FORMAT = 'patchproof-dev-kms-key/1';

/** Safe as a file name: no separators, no leading dot. */
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KEY_IDENTIFIER = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})(?:@([1-9]\d{0,8}))?$/;

export interface KeyFileVersion {
  version: number;
  createdAt: string;
  privateKeyHex: string;
  pubKeyHex: string;
  /** Set by POST /keys/{id}/disable: the version no longer signs or derives. */
  disabledAt?: string;
}

export interface KeyFile {
  format: typeof KEY_FILE_FORMAT;
  keyIdentifier: string;
  versions: KeyFileVersion[];
}

export interface KeyVersionInfo {
  /** The key name, without a version. */
  keyIdentifier: string;
  version: number;
  /** Compressed SEC1. */
  pubKeyHex: string;
}

export interface SigningKey extends KeyVersionInfo {
  privateKey: PrivateKey;
}

/** What callers of createDevKms may use; private keys stay inside. */
export interface DevKmsKeys {
  readonly dataDir: string;
  /** `name` (current version) or `name@N`; an unknown key is NOT_FOUND, as in a real KMS. */
  describe(keyIdentifier: string): KeyVersionInfo;
  /** Creates a new key name at version 1; CONFLICT when the name exists. */
  create(name: string): KeyVersionInfo;
  /** Provisioning: the current version of `name`, created first when missing (dev stack and test stacks). */
  ensure(name: string): KeyVersionInfo;
  /** Adds a version to an existing key and makes it current; NOT_FOUND for an unknown name. */
  addVersion(name: string): KeyVersionInfo;
  /** Disables one version (`name@N`, or the current one for `name`): it keeps its public key but no longer signs. */
  disable(keyIdentifier: string): KeyVersionInfo & { disabledAt: string };
  keyFilePath(name: string): string;
}

export interface DevKmsKeyStore extends DevKmsKeys {
  /** Refuses a disabled version. */
  signingKey(keyIdentifier: string): SigningKey;
}

export function parseKeyIdentifier(keyIdentifier: string): { name: string; version?: number } {
  const match = KEY_IDENTIFIER.exec(keyIdentifier);
  if (!match) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'keyIdentifier must be a name of [A-Za-z0-9._-] (up to 64) optionally followed by @<version>.',
    );
  }
  return { name: match[1]!, ...(match[2] !== undefined && { version: Number(match[2]) }) };
}

export function createKeyStore(options: { dataDir: string; logger?: Logger }): DevKmsKeyStore {
  const dataDir = path.resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // The directory is the dev KMS's own; tighten it even if it already existed.
  chmodSync(dataDir, 0o700);
  // Everything is synchronous so two concurrent first uses of a name cannot both create version 1.
  const loaded = new Map<string, KeyFile>();

  const keyFilePath = (name: string): string => {
    if (!KEY_NAME.test(name)) throw new DomainError('VALIDATION_FAILED', 'A key name must be [A-Za-z0-9._-], up to 64 characters.');
    return path.join(dataDir, `${name}.json`);
  };

  function load(name: string): KeyFile | undefined {
    const cached = loaded.get(name);
    if (cached) return cached;
    const file = keyFilePath(name);
    if (!existsSync(file)) return undefined;
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as KeyFile;
    if (parsed.format !== KEY_FILE_FORMAT || parsed.keyIdentifier !== name || !Array.isArray(parsed.versions)) {
      throw new Error(`dev kms: ${file} is not a ${KEY_FILE_FORMAT} file for ${name}`);
    }
    parsed.versions.forEach((entry, index) => {
      const derived = PrivateKey.fromHex(entry.privateKeyHex).toPublicKey().toString();
      if (entry.version !== index + 1 || derived !== entry.pubKeyHex) {
        throw new Error(`dev kms: ${file} version entry ${index + 1} is inconsistent`);
      }
    });
    loaded.set(name, parsed);
    return parsed;
  }

  function save(keyFile: KeyFile): void {
    const file = keyFilePath(keyFile.keyIdentifier);
    const staging = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(staging, `${JSON.stringify(keyFile, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(staging, 0o600);
    // Rename is atomic: a crash leaves the old file or the new one, never half a key.
    renameSync(staging, file);
    loaded.set(keyFile.keyIdentifier, keyFile);
  }

  function addVersion(name: string): KeyVersionInfo {
    const current = load(name) ?? { format: KEY_FILE_FORMAT, keyIdentifier: name, versions: [] };
    const privateKey = PrivateKey.fromRandom();
    const entry: KeyFileVersion = {
      version: current.versions.length + 1,
      createdAt: new Date().toISOString(),
      privateKeyHex: privateKey.toHex(),
      pubKeyHex: privateKey.toPublicKey().toString(),
    };
    save({ ...current, versions: [...current.versions, entry] });
    const info = { keyIdentifier: name, version: entry.version, pubKeyHex: entry.pubKeyHex };
    options.logger?.info('dev kms key version created', info);
    return info;
  }

  function versionEntry(keyIdentifier: string): { keyFile: KeyFile; entry: KeyFileVersion } {
    const { name, version } = parseKeyIdentifier(keyIdentifier);
    // Never created on first use: a rotation preflight must see an unprovisioned key as missing, as with a real KMS.
    const keyFile = load(name);
    if (!keyFile) throw new DomainError('NOT_FOUND', `Key ${keyIdentifier} does not exist; create it first (POST /keys).`);
    const entry = version === undefined ? keyFile.versions.at(-1) : keyFile.versions[version - 1];
    if (!entry) throw new DomainError('NOT_FOUND', `Key ${keyIdentifier} does not exist.`);
    return { keyFile, entry };
  }

  function signingKey(keyIdentifier: string): SigningKey {
    const { keyFile, entry } = versionEntry(keyIdentifier);
    if (entry.disabledAt) throw new DomainError('FORBIDDEN', `Key ${keyFile.keyIdentifier}@${entry.version} is disabled.`);
    return {
      keyIdentifier: keyFile.keyIdentifier,
      version: entry.version,
      pubKeyHex: entry.pubKeyHex,
      privateKey: PrivateKey.fromHex(entry.privateKeyHex),
    };
  }

  return {
    dataDir,
    signingKey,
    describe: (keyIdentifier) => {
      const { keyFile, entry } = versionEntry(keyIdentifier);
      return { keyIdentifier: keyFile.keyIdentifier, version: entry.version, pubKeyHex: entry.pubKeyHex };
    },
    disable: (keyIdentifier) => {
      const { keyFile, entry } = versionEntry(keyIdentifier);
      const disabledAt = entry.disabledAt ?? new Date().toISOString();
      save({ ...keyFile, versions: keyFile.versions.map((v) => (v.version === entry.version ? { ...v, disabledAt } : v)) });
      options.logger?.info('dev kms key version disabled', { keyIdentifier: keyFile.keyIdentifier, version: entry.version });
      return { keyIdentifier: keyFile.keyIdentifier, version: entry.version, pubKeyHex: entry.pubKeyHex, disabledAt };
    },
    create: (name) => {
      if (!KEY_NAME.test(name)) throw new DomainError('VALIDATION_FAILED', 'A key is created by name, without @<version>.');
      if (load(name)) throw new DomainError('CONFLICT', `Key ${name} already exists.`);
      return addVersion(name);
    },
    ensure: (name) => {
      if (!KEY_NAME.test(name)) throw new DomainError('VALIDATION_FAILED', 'A key is provisioned by name, without @<version>.');
      const existing = load(name);
      if (!existing) return addVersion(name);
      const entry = existing.versions.at(-1)!;
      return { keyIdentifier: name, version: entry.version, pubKeyHex: entry.pubKeyHex };
    },
    addVersion: (name) => {
      if (!KEY_NAME.test(name)) throw new DomainError('VALIDATION_FAILED', 'Versions are added to a key name, without @<version>.');
      if (!load(name)) throw new DomainError('NOT_FOUND', `Key ${name} does not exist; create it first (POST /keys).`);
      return addVersion(name);
    },
    keyFilePath,
  };
}

/** The key names a stack is configured to sign with (issuer, funding, change, SVD), without versions, once each. */
export function configuredKeyNames(config: {
  kms: { issuerKeyIdentifier: string };
  pool: { fundingKeyIdentifier: string; changeKeyIdentifier: string };
  ownerAuth: { svd: { kmsKeyIdentifier: string } };
}): string[] {
  const identifiers = [
    config.kms.issuerKeyIdentifier,
    config.pool.fundingKeyIdentifier,
    config.pool.changeKeyIdentifier,
    config.ownerAuth.svd.kmsKeyIdentifier,
  ];
  return [...new Set(identifiers.map((identifier) => parseKeyIdentifier(identifier).name))];
}

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DomainError } from '../../../src/errors';
import type { Logger } from '../../../src/logging/logger';
import { fleetMetaReadKey, tagFileReadKey } from '../../../src/tags/diversify';
import { decryptPiccData, parsePiccData, sessionMacKey } from '../../../src/tags/sun';

/**
 * AES-128 master keys for NTAG 424 DNA tags, with versions, on the dev KMS's disk (mode 0600 in a 0700 directory).
 * Masters never leave this process: callers get a tag's diversified keys (factory provisioning) or a tap's session
 * MAC key, never a master.
 */

export const TAG_MASTER_FILE_FORMAT = 'patchproof-dev-kms-tag-master/1';
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface TagMasterFile {
  format: typeof TAG_MASTER_FILE_FORMAT;
  keyIdentifier: string;
  versions: { version: number; createdAt: string; secretHex: string; disabledAt?: string }[];
}

export interface TagKeyVersion {
  keyIdentifier: string;
  version: number;
}

export interface SunSessionCandidate {
  version: number;
  uidHex: string;
  readCounter: number;
  sessionMacKeyHex: string;
}

export function createTagMasterStore(options: { dataDir: string; logger?: Logger }) {
  const dir = path.join(path.resolve(options.dataDir), 'tag-masters');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const loaded = new Map<string, TagMasterFile>();

  const filePath = (name: string) => {
    if (!KEY_NAME.test(name)) throw new DomainError('VALIDATION_FAILED', 'A key name must be [A-Za-z0-9._-], up to 64 characters.');
    return path.join(dir, `${name}.json`);
  };

  function load(name: string): TagMasterFile | undefined {
    const cached = loaded.get(name);
    if (cached) return cached;
    const file = filePath(name);
    if (!existsSync(file)) return undefined;
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as TagMasterFile;
    if (parsed.format !== TAG_MASTER_FILE_FORMAT || parsed.keyIdentifier !== name)
      throw new Error(`dev kms: ${file} is not a tag master file`);
    loaded.set(name, parsed);
    return parsed;
  }

  function save(file: TagMasterFile): void {
    const target = filePath(file.keyIdentifier);
    const staging = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(staging, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(staging, 0o600);
    renameSync(staging, target);
    loaded.set(file.keyIdentifier, file);
  }

  function addVersion(name: string): TagKeyVersion {
    const current = load(name) ?? { format: TAG_MASTER_FILE_FORMAT, keyIdentifier: name, versions: [] };
    const version = current.versions.length + 1;
    save({
      ...current,
      versions: [...current.versions, { version, createdAt: new Date().toISOString(), secretHex: randomBytes(16).toString('hex') }],
    });
    options.logger?.info('dev kms tag master version created', { keyIdentifier: name, version });
    return { keyIdentifier: name, version };
  }

  /** A plain name's first use creates version 1, as for signing keys. */
  function file(name: string): TagMasterFile {
    const found = load(name);
    if (found) return found;
    addVersion(name);
    return load(name)!;
  }

  function master(name: string, version?: number): { version: number; secret: Buffer } {
    const f = file(name);
    const entry = version === undefined ? f.versions.at(-1) : f.versions[version - 1];
    if (!entry) throw new DomainError('NOT_FOUND', `Tag key ${name}@${version} does not exist.`);
    if (entry.disabledAt) throw new DomainError('FORBIDDEN', `Tag key ${name}@${entry.version} is disabled.`);
    return { version: entry.version, secret: Buffer.from(entry.secretHex, 'hex') };
  }

  return {
    current(name: string): TagKeyVersion {
      return { keyIdentifier: name, version: file(name).versions.at(-1)!.version };
    },
    addVersion(name: string): TagKeyVersion {
      if (!KEY_NAME.test(name)) throw new DomainError('VALIDATION_FAILED', 'Versions are added to a key name.');
      return addVersion(name);
    },
    disable(name: string, version: number): TagKeyVersion {
      const f = file(name);
      if (!f.versions[version - 1]) throw new DomainError('NOT_FOUND', `Tag key ${name}@${version} does not exist.`);
      const disabledAt = new Date().toISOString();
      save({ ...f, versions: f.versions.map((v) => (v.version === version ? { ...v, disabledAt: v.disabledAt ?? disabledAt } : v)) });
      return { keyIdentifier: name, version };
    },
    /** What a factory writes into one tag: its file-read key and the version's meta-read key. */
    async diversify(name: string, uidHex: string, version?: number) {
      const m = master(name, version);
      return {
        keyIdentifier: name,
        version: m.version,
        sdmMetaReadKeyHex: (await fleetMetaReadKey(m.secret)).toString('hex'),
        sdmFileReadKeyHex: (await tagFileReadKey(m.secret, uidHex)).toString('hex'),
      };
    },
    /**
     * Opens a tap's PICCData under every enabled version, newest first, and returns each well-formed reading with
     * its session MAC key. A wrong version yields a well-formed reading about once in 256; the caller's MAC check
     * and the tag's own version tell the true one.
     */
    async sunSession(name: string, piccData: Buffer): Promise<SunSessionCandidate[]> {
      const f = file(name);
      const candidates: SunSessionCandidate[] = [];
      for (const entry of [...f.versions].reverse()) {
        if (entry.disabledAt) continue;
        const secret = Buffer.from(entry.secretHex, 'hex');
        const parsed = parsePiccData(decryptPiccData(await fleetMetaReadKey(secret), piccData));
        if (!parsed.ok) continue;
        const { uidHex, readCounter } = parsed.picc;
        const session = await sessionMacKey(await tagFileReadKey(secret, uidHex), uidHex, readCounter);
        candidates.push({ version: entry.version, uidHex, readCounter, sessionMacKeyHex: session.toString('hex') });
      }
      return candidates;
    },
  };
}

export type TagMasterStore = ReturnType<typeof createTagMasterStore>;

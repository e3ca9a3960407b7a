import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { isValidBackupId } from './ids';

/** A file being written into a backup; it appears under its name only once closed. */
export interface BackupFileWriter {
  write(chunk: string): Promise<void>;
  close(): Promise<{ bytes: number; sha256: string }>;
}

/**
 * Where backups live. The directory store below is the one built; an object store (S3, GCS) implements the same
 * five operations. Backup ids are folder names; a backup is complete once its manifest is written.
 */
export interface BackupStorage {
  /** Where the backups are, for reports: a directory path or a bucket URL. */
  readonly location: string;
  /** Ids of every backup folder, complete or not. */
  list(): Promise<string[]>;
  openWrite(backupId: string, name: string): Promise<BackupFileWriter>;
  /** The whole file, or null when it does not exist. */
  read(backupId: string, name: string): Promise<Buffer | null>;
  /** The file line by line, with the SHA-256 of its bytes once the lines are exhausted. */
  readLines(backupId: string, name: string): { lines: AsyncIterable<string>; sha256(): string };
  remove(backupId: string): Promise<void>;
}

function checkedName(name: string): string {
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(name) || name.startsWith('.')) throw new RangeError(`invalid backup file name: ${name}`);
  return name;
}

/** Backups as folders of a local (or mounted) directory; files are readable by the service user only. */
export function createDirectoryStorage(dir: string): BackupStorage {
  const root = path.resolve(dir);
  const folder = (backupId: string): string => {
    if (!isValidBackupId(backupId)) throw new RangeError(`invalid backup id: ${backupId}`);
    return path.join(root, backupId);
  };
  return {
    location: root,

    async list() {
      const entries = await readdir(root, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [];
        throw err;
      });
      return entries
        .filter((e) => e.isDirectory() && isValidBackupId(e.name))
        .map((e) => e.name)
        .sort();
    },

    async openWrite(backupId, name) {
      const target = path.join(folder(backupId), checkedName(name));
      await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      const partial = `${target}.partial`;
      const stream = createWriteStream(partial, { mode: 0o600 });
      const hash = createHash('sha256');
      let bytes = 0;
      return {
        async write(chunk) {
          const buffer = Buffer.from(chunk, 'utf8');
          hash.update(buffer);
          bytes += buffer.length;
          if (!stream.write(buffer)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
        },
        async close() {
          await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
          await rename(partial, target);
          return { bytes, sha256: hash.digest('hex') };
        },
      };
    },

    async read(backupId, name) {
      return readFile(path.join(folder(backupId), checkedName(name))).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
    },

    readLines(backupId, name) {
      const file = path.join(folder(backupId), checkedName(name));
      const hash = createHash('sha256');
      let digest: string | undefined;
      async function* lines(): AsyncIterable<string> {
        await stat(file);
        const stream = createReadStream(file);
        stream.on('data', (chunk) => hash.update(chunk));
        for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
          if (line.length > 0) yield line;
        }
        digest = hash.digest('hex');
      }
      return {
        lines: lines(),
        sha256: () => {
          if (digest === undefined) throw new Error('sha256 is known once every line was read');
          return digest;
        },
      };
    },

    async remove(backupId) {
      await rm(folder(backupId), { recursive: true, force: true });
    },
  };
}

import { mongo } from 'mongoose';
import type { BackupStorage } from './storage';

const { EJSON } = mongo.BSON;

/**
 * The backup format, written with the MongoDB driver: mongodump and mongorestore (MongoDB's database tools) cannot
 * be installed on every host we run on, so the same contract is kept with the driver. One file per collection with
 * one canonical Extended JSON document per line (types such as Date, ObjectId, Decimal128 and Binary survive), the
 * index specifications, and a manifest with counts and SHA-256 checksums that is written last: a backup without a
 * manifest is incomplete.
 */
export const BACKUP_FORMAT = 'patchproof-ejson/1';
export const MANIFEST_FILE = 'manifest.json';

export interface IndexSpec {
  name: string;
  key: Record<string, unknown>;
  unique?: boolean;
  sparse?: boolean;
  expireAfterSeconds?: number;
  partialFilterExpression?: Record<string, unknown>;
}

export interface CollectionManifest {
  name: string;
  file: string;
  documents: number;
  bytes: number;
  sha256: string;
  indexes: IndexSpec[];
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  backupId: string;
  database: string;
  createdAt: string;
  collections: CollectionManifest[];
}

type Db = mongo.Db;

export function collectionFile(name: string): string {
  return `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.ejson`;
}

export async function readManifest(storage: BackupStorage, backupId: string): Promise<BackupManifest | null> {
  const raw = await storage.read(backupId, MANIFEST_FILE);
  if (!raw) return null;
  const manifest = JSON.parse(raw.toString('utf8')) as Omit<BackupManifest, 'format'> & { format: string };
  if (manifest.format !== BACKUP_FORMAT) throw new Error(`backup ${backupId} has format ${manifest.format}, not ${BACKUP_FORMAT}`);
  return manifest as BackupManifest;
}

/** Every complete backup, oldest first. Folders without a manifest (an interrupted backup) are left out. */
export async function listManifests(storage: BackupStorage): Promise<BackupManifest[]> {
  const manifests: BackupManifest[] = [];
  for (const backupId of await storage.list()) {
    const manifest = await readManifest(storage, backupId).catch(() => null);
    if (manifest) manifests.push(manifest);
  }
  return manifests.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

function indexSpecs(raw: mongo.Document[]): IndexSpec[] {
  return raw
    .map((ix) => ({
      name: String(ix.name),
      key: ix.key as Record<string, unknown>,
      ...(ix.unique === true && { unique: true }),
      ...(ix.sparse === true && { sparse: true }),
      ...(typeof ix.expireAfterSeconds === 'number' && { expireAfterSeconds: ix.expireAfterSeconds }),
      ...(ix.partialFilterExpression !== undefined && {
        partialFilterExpression: ix.partialFilterExpression as Record<string, unknown>,
      }),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The collection's index descriptions (the driver types them loosely). */
export async function listIndexDocuments(collection: mongo.Collection): Promise<mongo.Document[]> {
  return (await collection.listIndexes().toArray()) as mongo.Document[];
}

export async function userCollections(db: Db): Promise<string[]> {
  const collections = await db.listCollections({}, { nameOnly: true }).toArray();
  return collections
    .map((c) => c.name)
    .filter((name) => !name.startsWith('system.'))
    .sort();
}

/**
 * Dumps every collection of `db` into backup `backupId`. Idempotent: a backup whose manifest exists is returned as
 * it is (`reused`); an interrupted one is removed and written again, so the same id always ends as one backup.
 */
export async function dumpDatabase(
  db: Db,
  storage: BackupStorage,
  backupId: string,
  options: { now: Date; onProgress?: (collection: string, documents: number) => void },
): Promise<{ manifest: BackupManifest; reused: boolean }> {
  const existing = await readManifest(storage, backupId);
  if (existing) return { manifest: existing, reused: true };
  await storage.remove(backupId);

  const collections: CollectionManifest[] = [];
  for (const name of await userCollections(db)) {
    const collection = db.collection(name);
    const file = collectionFile(name);
    const writer = await storage.openWrite(backupId, file);
    let documents = 0;
    // Natural order is enough: a restore inserts every document; _id keeps identity.
    for await (const doc of collection.find({}, { batchSize: 500 })) {
      await writer.write(`${EJSON.stringify(doc, { relaxed: false })}\n`);
      documents += 1;
      if (documents % 1000 === 0) options.onProgress?.(name, documents);
    }
    const { bytes, sha256 } = await writer.close();
    const indexes = indexSpecs(await listIndexDocuments(collection));
    collections.push({ name, file, documents, bytes, sha256, indexes });
    options.onProgress?.(name, documents);
  }

  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    backupId,
    database: db.databaseName,
    createdAt: options.now.toISOString(),
    collections,
  };
  const writer = await storage.openWrite(backupId, MANIFEST_FILE);
  await writer.write(`${JSON.stringify(manifest, null, 2)}\n`);
  await writer.close();
  return { manifest, reused: false };
}

// FerretDB (the dev stand-in) answers NotImplemented (code 238) for index kinds MongoDB has (TTL, partial).
const NOT_IMPLEMENTED = 238;
const INSERT_BATCH = 500;

export interface RestoredCollection {
  name: string;
  documents: number;
  indexesCreated: string[];
  /** Indexes the target database cannot build (FerretDB); reported, as ensure-indexes does. */
  indexesNotImplemented: string[];
}

/**
 * Restores backup `backupId` into the database `target`, which is dropped first so that a rerun starts clean.
 * Every file's checksum is verified while it is read; a mismatch fails the restore.
 */
export async function restoreDatabase(
  target: Db,
  storage: BackupStorage,
  backupId: string,
  options: { onProgress?: (collection: string, documents: number) => void } = {},
): Promise<{ manifest: BackupManifest; collections: RestoredCollection[] }> {
  const manifest = await readManifest(storage, backupId);
  if (!manifest) throw new BackupNotFound(backupId);
  await target.dropDatabase();

  const restored: RestoredCollection[] = [];
  for (const entry of manifest.collections) {
    const collection = target.collection(entry.name);
    await target.createCollection(entry.name).catch((err: { codeName?: string }) => {
      if (err.codeName !== 'NamespaceExists') throw err;
    });
    const reader = storage.readLines(backupId, entry.file);
    let batch: mongo.Document[] = [];
    let documents = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await collection.insertMany(batch, { ordered: false });
      documents += batch.length;
      batch = [];
      options.onProgress?.(entry.name, documents);
    };
    for await (const line of reader.lines) {
      batch.push(EJSON.parse(line, { relaxed: false }) as mongo.Document);
      if (batch.length >= INSERT_BATCH) await flush();
    }
    await flush();
    if (reader.sha256() !== entry.sha256) throw new BackupCorrupt(backupId, entry.file);

    const indexesCreated: string[] = [];
    const indexesNotImplemented: string[] = [];
    for (const index of entry.indexes) {
      if (index.name === '_id_') continue;
      const { key, name, ...indexOptions } = index;
      try {
        await collection.createIndex(key as mongo.IndexSpecification, { name, ...indexOptions });
        indexesCreated.push(name);
      } catch (err) {
        if ((err as { code?: number }).code !== NOT_IMPLEMENTED) throw err;
        indexesNotImplemented.push(name);
      }
    }
    restored.push({ name: entry.name, documents, indexesCreated, indexesNotImplemented });
  }
  return { manifest, collections: restored };
}

export interface CollectionCheck {
  name: string;
  expectedDocuments: number;
  documents: number;
  expectedIndexes: string[];
  missingIndexes: string[];
  indexesNotImplemented: string[];
  ok: boolean;
}

/** Compares a restored database with the manifest: every collection, its document count and its indexes. */
export async function checkRestoredDatabase(
  target: Db,
  manifest: BackupManifest,
  notImplemented: Record<string, string[]> = {},
): Promise<CollectionCheck[]> {
  const present = new Set(await userCollections(target));
  const checks: CollectionCheck[] = [];
  for (const entry of manifest.collections) {
    const exists = present.has(entry.name);
    const collection = target.collection(entry.name);
    const documents = exists ? await collection.countDocuments({}) : 0;
    const indexNames = new Set(exists ? (await listIndexDocuments(collection)).map((ix) => String(ix.name)) : []);
    const skipped = new Set(notImplemented[entry.name] ?? []);
    const expectedIndexes = entry.indexes.map((ix) => ix.name);
    const missingIndexes = expectedIndexes.filter((name) => !indexNames.has(name) && !skipped.has(name));
    checks.push({
      name: entry.name,
      expectedDocuments: entry.documents,
      documents,
      expectedIndexes,
      missingIndexes,
      indexesNotImplemented: [...skipped],
      ok: exists && documents === entry.documents && missingIndexes.length === 0,
    });
  }
  return checks;
}

export class BackupNotFound extends Error {
  constructor(readonly backupId: string) {
    super(`backup ${backupId} not found or incomplete (no manifest)`);
    this.name = 'BackupNotFound';
  }
}

export class BackupCorrupt extends Error {
  constructor(
    readonly backupId: string,
    readonly file: string,
  ) {
    super(`backup ${backupId}: checksum of ${file} does not match its manifest`);
    this.name = 'BackupCorrupt';
  }
}

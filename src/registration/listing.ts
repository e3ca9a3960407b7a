import { Transform, type Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { Connection, QueryFilter } from 'mongoose';
import { DomainError } from '../errors';
import { DEFAULT_TENANT_ID } from '../tenancy/apiKeys';
import { patchModel, type PatchDocument, type PatchStatus } from './models';

/** One patch as listed and exported: the head's state, never the signed record's inner proof material. */
export interface PatchListItem {
  uid: string;
  registrationId: string;
  status: PatchStatus;
  owner: string;
  product: Record<string, unknown>;
  recordHash: string;
  txid: string | null;
  blockHeight: number | null;
  batchId: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface PatchListFilter {
  tenantId: string;
  status?: PatchStatus;
  createdFrom?: Date;
  createdTo?: Date;
}

/** Fields read for a listing: the record only for its product, the rest as stored. */
const LIST_PROJECTION = {
  registrationId: 1,
  status: 1,
  owner: 1,
  'record.product': 1,
  recordHash: 1,
  anchor: 1,
  batchId: 1,
  createdBy: 1,
  createdAt: 1,
  updatedAt: 1,
} as const;

type ListedPatch = Pick<
  PatchDocument,
  '_id' | 'registrationId' | 'status' | 'owner' | 'record' | 'recordHash' | 'anchor' | 'batchId' | 'createdBy' | 'createdAt' | 'updatedAt'
>;

function listItem(patch: ListedPatch): PatchListItem {
  return {
    uid: patch._id,
    registrationId: patch.registrationId,
    status: patch.status,
    owner: patch.owner,
    product: (patch.record?.product as Record<string, unknown> | undefined) ?? {},
    recordHash: patch.recordHash,
    txid: patch.anchor?.txid ?? null,
    blockHeight: patch.anchor?.blockHeight ?? null,
    batchId: patch.batchId ?? null,
    createdBy: patch.createdBy ?? null,
    createdAt: patch.createdAt.toISOString(),
    updatedAt: patch.updatedAt.toISOString(),
  };
}

/**
 * A tenant's patches in (createdAt, _id) order: an index leads with tenantId. Records from before tenancy carry no
 * tenantId and belong to the default tenant.
 */
function tenantFilter(filter: PatchListFilter): QueryFilter<PatchDocument> {
  const query: QueryFilter<PatchDocument> = {
    tenantId: filter.tenantId === DEFAULT_TENANT_ID ? { $in: [DEFAULT_TENANT_ID, null] } : filter.tenantId,
  };
  if (filter.status) query.status = filter.status;
  if (filter.createdFrom || filter.createdTo) {
    query.createdAt = {
      ...(filter.createdFrom && { $gte: filter.createdFrom }),
      ...(filter.createdTo && { $lt: filter.createdTo }),
    };
  }
  return query;
}

const ORDER = { createdAt: 1, _id: 1 } as const;

/**
 * The opaque cursor: base64url of [createdAt in ms, uid] of the last patch of a page. The next page starts strictly
 * after that position, so a patch inserted meanwhile never shifts a page: it is listed once, where its own position is.
 */
export function encodeListCursor(patch: { createdAt: Date; _id: string }): string {
  return Buffer.from(JSON.stringify([patch.createdAt.getTime(), patch._id])).toString('base64url');
}

export function decodeListCursor(cursor: string): { createdAt: Date; uid: string } {
  try {
    const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(decoded) && decoded.length === 2 && Number.isSafeInteger(decoded[0]) && typeof decoded[1] === 'string') {
      return { createdAt: new Date(decoded[0] as number), uid: decoded[1] };
    }
  } catch {
    // fall through to the validation error
  }
  throw new DomainError('VALIDATION_FAILED', 'cursor: not a cursor this API returned (use nextCursor as given).');
}

/** One page of a tenant's patches, oldest first, and the cursor of the next (null after the last). */
export async function listPatches(
  mongo: Connection,
  filter: PatchListFilter,
  page: { cursor?: string; limit: number },
): Promise<{ items: PatchListItem[]; nextCursor: string | null }> {
  const query = tenantFilter(filter);
  if (page.cursor) {
    const after = decodeListCursor(page.cursor);
    query.$or = [{ createdAt: { $gt: after.createdAt } }, { createdAt: after.createdAt, _id: { $gt: after.uid } }];
  }
  const found = await patchModel(mongo)
    .find(query, LIST_PROJECTION)
    .sort(ORDER)
    .limit(page.limit + 1)
    .lean<ListedPatch[]>();
  const pageItems = found.slice(0, page.limit);
  const last = pageItems.at(-1);
  return { items: pageItems.map(listItem), nextCursor: found.length > page.limit && last ? encodeListCursor(last) : null };
}

export type ExportFormat = 'ndjson' | 'csv';

export const EXPORT_CSV_COLUMNS = [
  'uid',
  'registrationId',
  'status',
  'owner',
  'productName',
  'sku',
  'serialNumber',
  'recordHash',
  'txid',
  'blockHeight',
  'batchId',
  'createdBy',
  'createdAt',
  'updatedAt',
] as const;

function csvRow(item: PatchListItem): Record<(typeof EXPORT_CSV_COLUMNS)[number], string | number | null> {
  const text = (value: unknown) => (typeof value === 'string' ? value : null);
  return {
    uid: item.uid,
    registrationId: item.registrationId,
    status: item.status,
    owner: item.owner,
    productName: text(item.product.name),
    sku: text(item.product.sku),
    serialNumber: text(item.product.serial_number),
    recordHash: item.recordHash,
    txid: item.txid,
    blockHeight: item.blockHeight,
    batchId: item.batchId,
    createdBy: item.createdBy,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

/** How many patches the database hands over per round trip while exporting. */
const EXPORT_BATCH_SIZE = 500;

/**
 * A tenant's whole history as a byte stream: a database cursor read one batch at a time, each patch turned into a
 * line as the response drains (pipeline backpressure), so memory stays flat whatever the tenant's size.
 */
export function exportPatches(mongo: Connection, filter: PatchListFilter, format: ExportFormat): Readable[] {
  const cursor = patchModel(mongo)
    .find(tenantFilter(filter), LIST_PROJECTION)
    .sort(ORDER)
    .lean<ListedPatch[]>()
    .cursor({ batchSize: EXPORT_BATCH_SIZE });
  const toItem = new Transform({
    objectMode: true,
    transform(patch: ListedPatch, _encoding, done) {
      const item = listItem(patch);
      done(null, format === 'csv' ? csvRow(item) : `${JSON.stringify(item)}\n`);
    },
  });
  const stages: Readable[] = [cursor, toItem];
  if (format === 'csv') stages.push(stringify({ header: true, columns: [...EXPORT_CSV_COLUMNS] }));
  return stages;
}

import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ArchivedHistoryDocument } from './models';

/** How one history JSON text is stored: as text, or gzip + base64 above the threshold. No I/O. */
export function encodeHistory(
  json: string,
  compressAboveBytes: number,
): Pick<ArchivedHistoryDocument, 'encoding' | 'history' | 'sha256' | 'jsonBytes'> {
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const sha256 = createHash('sha256').update(json, 'utf8').digest('hex');
  if (jsonBytes <= compressAboveBytes) return { encoding: 'json', history: json, sha256, jsonBytes };
  return { encoding: 'gzip-base64', history: gzipSync(Buffer.from(json, 'utf8')).toString('base64'), sha256, jsonBytes };
}

/** The history JSON text back, checked against its recorded SHA-256 (a damaged copy throws). */
export function decodeHistory(doc: Pick<ArchivedHistoryDocument, '_id' | 'encoding' | 'history' | 'sha256'>): string {
  const json = doc.encoding === 'json' ? doc.history : gunzipSync(Buffer.from(doc.history, 'base64')).toString('utf8');
  const actual = createHash('sha256').update(json, 'utf8').digest('hex');
  if (actual !== doc.sha256) throw new Error(`archived history ${doc._id} does not match its sha256 (${actual} ≠ ${doc.sha256})`);
  return json;
}

import express, { type RequestHandler } from 'express';
import { DomainError } from '../../src/errors';
import { findOperatorKey } from './inputGuards';

export const NDJSON = 'application/x-ndjson';
const BATCH_RETRY_AFTER_SECONDS = 5;

/**
 * Reads a bulk upload: a JSON array, or NDJSON (one JSON object per line), into `req.body` as an array. Refuses,
 * before anything is stored, a body larger than `limit` or with more than `maxItems` items (413), a line that is
 * not JSON (400, naming its line and item index) and any operator key (400), and more than `maxConcurrent` batches
 * at once in this process (429). Validating each item is the route's.
 */
export function bulkItemsBody(options: { limit: string; maxItems: number; maxConcurrent: number }): RequestHandler {
  const raw = express.raw({ type: () => true, limit: options.limit });
  const limitBytes = sizeInBytes(options.limit);
  let reading = 0;
  return (req, res, next) => {
    if (!req.is(['application/json', NDJSON])) {
      return next(
        new DomainError('UNSUPPORTED_MEDIA_TYPE', `Send the items as application/json (an array) or ${NDJSON} (one object per line).`),
      );
    }
    // A full batch costs the process ~100 MB of heap while it is read, parsed and checked (its body, the parsed
    // items, their validated copies): a bound on batches at once keeps the API inside its heap limit.
    // A body declared over the limit is refused by its size (413) without taking a slot: the parser answers it
    // before reading anything.
    const declared = Number(req.headers['content-length']);
    const oversize = Number.isFinite(declared) && declared > limitBytes;
    if (!oversize && reading >= options.maxConcurrent) {
      return next(
        new DomainError('RATE_LIMITED', 'Too many batches are being received; retry later.', {
          retryAfterSeconds: BATCH_RETRY_AFTER_SECONDS,
        }),
      );
    }
    if (!oversize) {
      reading += 1;
      res.once('close', () => (reading -= 1));
    }
    raw(req, res, (err?: unknown) => {
      if (err) return next(err);
      try {
        const body: unknown = req.body;
        const text = Buffer.isBuffer(body) ? body.toString('utf8') : '';
        const items = req.is(NDJSON) ? parseNdjson(text, options.maxItems) : parseJsonArray(text);
        if (items.length === 0) throw new DomainError('VALIDATION_FAILED', 'The batch has no items.');
        if (items.length > options.maxItems) throw tooMany(items.length, options.maxItems);
        const offending = findOperatorKey(items);
        if (offending)
          throw new DomainError('NOSQL_OPERATOR_REJECTED', `Field names may not start with "$" or contain "." (${offending}).`);
        req.body = items;
        next();
      } catch (parseError) {
        next(parseError);
      }
    });
  };
}

/** `16mb`, `64kb`, `100b` (the BATCH_BODY_LIMIT format) in bytes, counted as the body parser counts them (1 kb = 1024). */
function sizeInBytes(size: string): number {
  const match = /^(\d+)(b|kb|mb)$/i.exec(size);
  if (!match) throw new Error(`not a size: ${size}`);
  const unit = { b: 1, kb: 1024, mb: 1024 * 1024 }[match[2]!.toLowerCase() as 'b' | 'kb' | 'mb'];
  return Number(match[1]) * unit;
}

function tooMany(count: number | string, maxItems: number): DomainError {
  return new DomainError(
    'PAYLOAD_TOO_LARGE',
    `A batch holds at most ${maxItems} items; this one has ${count}. Split it into several batches.`,
    {
      maxItems,
    },
  );
}

function parseJsonArray(text: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DomainError('MALFORMED_JSON', 'The request body is not valid JSON.');
  }
  // A bare string or number is not a JSON body here, as the app's strict JSON parser holds everywhere else.
  if (typeof parsed !== 'object' || parsed === null) throw new DomainError('MALFORMED_JSON', 'The request body must be a JSON array.');
  if (!Array.isArray(parsed)) throw new DomainError('VALIDATION_FAILED', 'Expected a JSON array of registrations.');
  return parsed;
}

function parseNdjson(text: string, maxItems: number): unknown[] {
  const items: unknown[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    if (items.length === maxItems) throw tooMany(`more than ${maxItems}`, maxItems);
    try {
      items.push(JSON.parse(line));
    } catch {
      throw new DomainError('MALFORMED_JSON', `Line ${i + 1} (item ${items.length}) is not valid JSON.`, {
        line: i + 1,
        index: items.length,
      });
    }
  }
  return items;
}

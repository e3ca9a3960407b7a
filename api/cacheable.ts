import { createHash } from 'node:crypto';
import type { Response } from 'express';

/** A JSON body's exact bytes and the strong ETag over them. */
export interface SerializedJson {
  body: string;
  etag: string;
}

export function serializeJson(value: unknown): SerializedJson {
  const body = JSON.stringify(value);
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
}

/**
 * Sends a JSON body with a strong ETag over its exact bytes and the given Cache-Control, so CDNs and browsers can
 * keep it. Express answers 304 itself when If-None-Match matches the ETag.
 */
export function sendCacheableJson(res: Response, value: unknown, cacheControl: string): void {
  sendSerializedJson(res, serializeJson(value), cacheControl);
}

export function sendSerializedJson(res: Response, json: SerializedJson, cacheControl: string): void {
  res.setHeader('ETag', json.etag);
  res.setHeader('Cache-Control', cacheControl);
  res.type('application/json').send(json.body);
}

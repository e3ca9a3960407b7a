import { createHash } from 'node:crypto';
import type { Response } from 'express';

/**
 * Sends a JSON body with a strong ETag over its exact bytes and the given Cache-Control, so CDNs and browsers can
 * keep it. Express answers 304 itself when If-None-Match matches the ETag.
 */
export function sendCacheableJson(res: Response, value: unknown, cacheControl: string): void {
  const body = JSON.stringify(value);
  res.setHeader('ETag', `"${createHash('sha256').update(body).digest('base64url')}"`);
  res.setHeader('Cache-Control', cacheControl);
  res.type('application/json').send(body);
}

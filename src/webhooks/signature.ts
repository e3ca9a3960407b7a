import { createHmac, randomBytes } from 'node:crypto';

/** Header names of a delivery. */
export const SIGNATURE_HEADER = 'PatchProof-Signature';
export const EVENT_ID_HEADER = 'PatchProof-Event-Id';
export const EVENT_TYPE_HEADER = 'PatchProof-Event-Type';

/** A new signing secret: 32 random bytes, prefixed so a leaked one is recognisable in a scan. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** HMAC-SHA256 over `<timestamp>.<body>`, hex. The timestamp is signed so a captured delivery cannot be replayed later. */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

/** `t=<unix seconds>,v1=<hex>[,v1=<hex>]`: one v1 per valid secret, so a receiver with either secret accepts it. */
export function signatureHeader(secrets: readonly string[], timestamp: number, body: string): string {
  return [`t=${timestamp}`, ...secrets.map((secret) => `v1=${webhookSignature(secret, timestamp, body)}`)].join(',');
}

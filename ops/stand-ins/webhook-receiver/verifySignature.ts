import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Verifies a PatchProof webhook delivery. `header` is the PatchProof-Signature header, `rawBody` the request body
 * exactly as received (before any JSON parsing), `secret` the endpoint's signing secret (whsec_…).
 */
export function verifyPatchProofSignature(secret: string, header: string, rawBody: string, toleranceSeconds = 300): boolean {
  const fields = header.split(',').map((field) => field.trim().split('='));
  const timestamp = Number(fields.find(([name]) => name === 't')?.[1]);
  // Refuse old (replayed) and far-future deliveries.
  if (!Number.isInteger(timestamp) || Math.abs(Date.now() / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp}.${rawBody}`, 'utf8').digest();
  // During a secret rotation the header carries one v1 per valid secret: any match is enough.
  return fields
    .filter(([name]) => name === 'v1')
    .some(([, hex]) => {
      const given = Buffer.from(hex ?? '', 'hex');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

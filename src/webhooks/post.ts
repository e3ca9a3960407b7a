import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { CheckedTarget } from './ssrfGuard';

/** Why an attempt failed, as the delivery log records it: a class, never the receiver's body or our secret. */
export type DeliveryErrorClass =
  'refused-target' | 'timeout' | 'connection' | 'tls' | 'redirect' | 'http-status' | 'response-too-large' | 'endpoint-gone';

export interface PostOutcome {
  /** Null when no answer came. */
  statusCode: number | null;
  durationMs: number;
  errorClass: DeliveryErrorClass | null;
}

export interface PostLimits {
  timeoutMs: number;
  maxResponseBytes: number;
}

/**
 * POSTs the body to the checked address only: the connection's lookup answers the pinned address, so the name is
 * not resolved again (TLS still checks the certificate for the URL's host name). No redirect is followed; the
 * answer is read up to the size limit and dropped; the whole exchange has one deadline.
 */
export function postToPinnedTarget(
  target: CheckedTarget,
  headers: Record<string, string>,
  body: string,
  limits: PostLimits,
): Promise<PostOutcome> {
  const started = process.hrtime.bigint();
  const elapsed = () => Number((process.hrtime.bigint() - started) / 1_000_000n);
  const { address, family } = target.pinned;
  const lookup: LookupFunction = (_host, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const client = target.url.protocol === 'https:' ? https : http;
  return new Promise<PostOutcome>((resolve) => {
    let settled = false;
    const finish = (statusCode: number | null, errorClass: DeliveryErrorClass | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      request.destroy();
      resolve({ statusCode, durationMs: elapsed(), errorClass });
    };
    const request = client.request(
      target.url,
      {
        method: 'POST',
        lookup,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
        agent: false,
      },
      (response) => {
        const status = response.statusCode ?? 0;
        if (status >= 300 && status < 400) return finish(status, 'redirect');
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          // The receiver's answer is not kept: past the cap it is cut off, and only a non-2xx counts as a failure.
          if (size > limits.maxResponseBytes) finish(status, status >= 200 && status < 300 ? null : 'response-too-large');
        });
        response.on('end', () => finish(status, status >= 200 && status < 300 ? null : 'http-status'));
        response.on('error', () => finish(status, 'connection'));
      },
    );
    const deadline = setTimeout(() => finish(null, 'timeout'), limits.timeoutMs);
    request.on('error', (err: NodeJS.ErrnoException) => {
      const tls = typeof err.code === 'string' && /CERT|SSL|TLS|SELF_SIGNED/.test(err.code);
      finish(null, tls ? 'tls' : 'connection');
    });
    request.end(body);
  });
}

import { lookup } from 'node:dns/promises';
import { withDeadline } from '../resilience/deadline';
import type { Resolver } from './ssrfGuard';

/**
 * The system resolver for the SSRF guard: every address of a name, within a deadline (a stalled DNS server must not
 * hold an API request or an attempt; the guard reports it as unresolvable).
 */
export function systemResolver(timeoutMs: number): Resolver {
  return async (hostname) =>
    (await withDeadline(lookup(hostname, { all: true, verbatim: true }), timeoutMs, 'DNS')).map((a) => ({
      address: a.address,
      family: a.family === 6 ? 6 : 4,
    }));
}

/**
 * What a broadcast came to, read from the node's reason text that WhatsOnChain relays (bsv-notes §3.4). Texts are
 * matched case-insensitively as substrings, because WOC wraps them (`unexpected response code 500: …`) and other
 * node versions word a few of them differently; the raw reason is always kept.
 */
export type BroadcastOutcome =
  | 'success'
  | 'missing_inputs'
  | 'mempool_conflict'
  | 'dust'
  | 'insufficient_fee'
  | 'script_verify_failed'
  | 'too_long_mempool_chain'
  | 'other'
  /** No verdict: the request failed in transport (timeout, network, 5xx, 429) after every retry. */
  | 'retryable';

export interface BroadcastResult {
  outcome: BroadcastOutcome;
  /** Computed locally from the raw bytes, so it is known whatever the service answered. */
  txid: string;
  /** The node already had the tx (rebroadcast): a success, nothing new was accepted. */
  alreadyKnown: boolean;
  /** The node's reason with WOC's prefix removed, or the transport failure. */
  reason?: string;
  httpStatus?: number;
}

/** Rebroadcasts of a tx the node already holds; each counts as success (bsv-notes §3.4, §6). */
export const ALREADY_KNOWN_TEXTS = [
  'transaction already in the mempool',
  'already in the mempool',
  'already in mempool',
  'txn-already-in-mempool',
  'txn-already-known',
  'already known',
] as const;

/** Every other text matched, by outcome; checked in this order after the already-known texts. */
export const REJECTION_TEXTS: readonly [Exclude<BroadcastOutcome, 'success' | 'other' | 'retryable'>, readonly string[]][] = [
  ['missing_inputs', ['missing inputs', 'bad-txns-inputs-missingorspent']],
  ['mempool_conflict', ['txn-mempool-conflict', 'txn-double-spend-detected']],
  ['too_long_mempool_chain', ['too-long-mempool-chain']],
  ['insufficient_fee', ['mempool min fee not met', 'min relay fee not met', 'insufficient priority', 'insufficient fee', 'fee is too low']],
  ['script_verify_failed', ['mandatory-script-verify-flag-failed', 'non-mandatory-script-verify-flag', 'script-verify-flag']],
  ['dust', ['dust']],
];

export const WOC_REJECTION_PREFIX = 'unexpected response code 500: ';

/** The node's reason from a WOC error body: a JSON string (or plain text) carrying the prefix. */
export function nodeReasonOf(body: string): string {
  let text = body.trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'string') text = parsed;
  } catch {
    // plain text body
  }
  text = text.trim();
  return text.toLowerCase().startsWith(WOC_REJECTION_PREFIX) ? text.slice(WOC_REJECTION_PREFIX.length).trim() : text;
}

export function classifyBroadcastReason(reason: string): { outcome: Exclude<BroadcastOutcome, 'retryable'>; alreadyKnown: boolean } {
  const text = reason.toLowerCase();
  if (ALREADY_KNOWN_TEXTS.some((marker) => text.includes(marker))) return { outcome: 'success', alreadyKnown: true };
  for (const [outcome, markers] of REJECTION_TEXTS) {
    if (markers.some((marker) => (marker === 'dust' ? /(^|[^a-z-])dust([^a-z-]|$)/.test(text) : text.includes(marker)))) {
      return { outcome, alreadyKnown: false };
    }
  }
  return { outcome: 'other', alreadyKnown: false };
}

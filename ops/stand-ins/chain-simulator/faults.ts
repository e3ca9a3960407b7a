/**
 * Faults the simulator injects into its WhatsOnChain routes, changeable at run time through /admin/faults. Rates
 * are probabilities in [0, 1] drawn per request; the `…Next` counters fail exactly the next N requests, which is
 * what deterministic tests want.
 */
export interface FaultSettings {
  /** Added to every WOC response. */
  latencyMs: number;
  /** Requests answered 503 before they are processed. */
  error5xxRate: number;
  error5xxNext: number;
  /** Requests answered 429 with a Retry-After header. */
  error429Rate: number;
  error429Next: number;
  retryAfterSeconds: number;
  /** Valid broadcasts answered with their txid but never entered into the mempool. */
  acceptThenForget: number;
  /** Valid broadcasts entered into the mempool but answered 500, so the client cannot know it succeeded. */
  error5xxAfterAcceptRate: number;
  /** A newly accepted tx stays invisible (queries, spends) for this long: spending it yields `Missing inputs`. */
  propagationLagMs: number;
}

export const NO_FAULTS: Readonly<FaultSettings> = Object.freeze({
  latencyMs: 0,
  error5xxRate: 0,
  error5xxNext: 0,
  error429Rate: 0,
  error429Next: 0,
  retryAfterSeconds: 1,
  acceptThenForget: 0,
  error5xxAfterAcceptRate: 0,
  propagationLagMs: 0,
});

const RATES = ['error5xxRate', 'error429Rate', 'acceptThenForget', 'error5xxAfterAcceptRate'] as const;
const COUNTS = ['latencyMs', 'error5xxNext', 'error429Next', 'retryAfterSeconds', 'propagationLagMs'] as const;

/** Checks a partial update; unknown fields are refused so a typo never silently does nothing. */
export function parseFaultUpdate(body: unknown): { ok: true; update: Partial<FaultSettings> } | { ok: false; problems: string[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, problems: ['body must be a JSON object'] };
  const problems: string[] = [];
  const update: Partial<FaultSettings> = {};
  for (const [key, value] of Object.entries(body)) {
    if ((RATES as readonly string[]).includes(key)) {
      if (typeof value !== 'number' || !(value >= 0 && value <= 1)) problems.push(`${key}: a number from 0 to 1`);
      else update[key as (typeof RATES)[number]] = value;
    } else if ((COUNTS as readonly string[]).includes(key)) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) problems.push(`${key}: a whole number ≥ 0`);
      else update[key as (typeof COUNTS)[number]] = value;
    } else {
      problems.push(`${key}: unknown fault`);
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, update };
}

export type RequestFault = { kind: 'none' } | { kind: '5xx' } | { kind: '429'; retryAfterSeconds: number };

export class FaultInjector {
  private current: FaultSettings = { ...NO_FAULTS };

  constructor(private readonly random: () => number = Math.random) {}

  get settings(): FaultSettings {
    return { ...this.current };
  }

  update(update: Partial<FaultSettings>): FaultSettings {
    this.current = { ...this.current, ...update };
    return this.settings;
  }

  reset(): FaultSettings {
    this.current = { ...NO_FAULTS };
    return this.settings;
  }

  /** What happens to the next WOC request; counters are consumed before rates are drawn. */
  nextRequest(): RequestFault {
    const s = this.current;
    if (s.error429Next > 0) {
      s.error429Next--;
      return { kind: '429', retryAfterSeconds: s.retryAfterSeconds };
    }
    if (s.error5xxNext > 0) {
      s.error5xxNext--;
      return { kind: '5xx' };
    }
    if (this.draw(s.error429Rate)) return { kind: '429', retryAfterSeconds: s.retryAfterSeconds };
    if (this.draw(s.error5xxRate)) return { kind: '5xx' };
    return { kind: 'none' };
  }

  forgetThisBroadcast(): boolean {
    return this.draw(this.current.acceptThenForget);
  }

  failAfterAccept(): boolean {
    return this.draw(this.current.error5xxAfterAcceptRate);
  }

  private draw(rate: number): boolean {
    return rate > 0 && this.random() < rate;
  }
}

/**
 * A circuit breaker per dependency of the API. After `failureThreshold` consecutive stalls or connection failures
 * it opens: calls are refused at once (CircuitOpenError) instead of queueing behind a dependency that does not
 * answer. After `openMs` it half-opens: calls go through again as probes; the first success closes it, a failure
 * opens it for another `openMs`.
 *
 * Written here rather than taken from a library: the hooks it sits in (ioredis' sendCommand, mongoose middleware,
 * Temporal client interceptors) need a synchronous "may this call go?" and a separate report of the outcome, and a
 * Redis pipeline must see one state for all of its commands. The state changes only on outcomes and on the open
 * timer, never while a caller is deciding.
 */

export type DependencyName = 'mongo' | 'redis' | 'temporal';
export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitOptions {
  dependency: DependencyName;
  failureThreshold: number;
  openMs: number;
  onStateChange?: (state: CircuitState) => void;
}

/** A call refused because its dependency's circuit is open; the API answers 503 DEPENDENCY_UNAVAILABLE. */
export class CircuitOpenError extends Error {
  constructor(readonly dependency: DependencyName) {
    super(`${dependency} circuit open`);
    this.name = 'CircuitOpenError';
  }
}

export class CircuitBreaker {
  readonly dependency: DependencyName;
  private current: CircuitState = 'closed';
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CircuitOptions) {
    this.dependency = options.dependency;
  }

  get state(): CircuitState {
    return this.current;
  }

  /** Throws CircuitOpenError while the circuit is open. */
  check(): void {
    if (this.current === 'open') throw new CircuitOpenError(this.dependency);
  }

  recordSuccess(): void {
    this.failures = 0;
    clearTimeout(this.timer);
    this.moveTo('closed');
  }

  recordFailure(): void {
    this.failures++;
    if (this.current === 'half_open' || (this.current === 'closed' && this.failures >= this.options.failureThreshold)) this.open();
  }

  /** Runs `call` unless the circuit is open, and records its outcome; `isFailure` tells a stall from an answer. */
  async run<T>(call: () => Promise<T>, isFailure: (err: unknown) => boolean): Promise<T> {
    this.check();
    try {
      const result = await call();
      this.recordSuccess();
      return result;
    } catch (err) {
      if (isFailure(err)) this.recordFailure();
      else this.recordSuccess();
      throw err;
    }
  }

  /** Stops the open timer (process shutdown, tests). */
  close(): void {
    clearTimeout(this.timer);
  }

  private open(): void {
    this.moveTo('open');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.current === 'open') this.moveTo('half_open');
    }, this.options.openMs);
    this.timer.unref();
  }

  private moveTo(state: CircuitState): void {
    if (state === this.current) return;
    this.current = state;
    this.options.onStateChange?.(state);
  }
}

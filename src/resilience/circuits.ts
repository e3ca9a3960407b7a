import type { AppConfig } from '../config';
import type { Logger } from '../logging/logger';
import type { Metrics } from '../metrics';
import { CircuitBreaker, type DependencyName } from './circuitBreaker';

export type DependencyCircuits = Record<DependencyName, CircuitBreaker>;

/** One breaker per dependency of the API, each reported in `patchproof_circuit_open` and logged when it changes. */
export function createDependencyCircuits(
  deadlines: AppConfig['deadlines'],
  observers: { metrics: Metrics; logger: Logger },
): DependencyCircuits {
  const { metrics, logger } = observers;
  const create = (dependency: DependencyName) => {
    metrics.circuitOpen.set({ dependency }, 0);
    metrics.circuitOpens.inc({ dependency }, 0);
    return new CircuitBreaker({
      dependency,
      failureThreshold: deadlines.circuitFailureThreshold,
      openMs: deadlines.circuitOpenMs,
      onStateChange: (state) => {
        metrics.circuitOpen.set({ dependency }, state === 'closed' ? 0 : 1);
        if (state === 'open') {
          metrics.circuitOpens.inc({ dependency });
          logger.warn('circuit open: refusing calls', { dependency, openMs: deadlines.circuitOpenMs });
        } else if (state === 'closed') {
          logger.info('circuit closed: dependency answers again', { dependency });
        }
      },
    });
  };
  return { mongo: create('mongo'), redis: create('redis'), temporal: create('temporal') };
}

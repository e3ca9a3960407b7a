import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { pingMongo } from '../src/db/mongo';
import type { Metrics } from '../src/metrics';
import { DeadlineExceededError, withDeadline } from '../src/resilience/deadline';

export type DependencyName = 'mongo' | 'redis' | 'temporal';

export interface DependencyStatus {
  status: 'up' | 'down';
  latencyMs: number;
  error?: string;
}

export interface ReadinessReport {
  status: 'ready' | 'not_ready';
  checks: Record<DependencyName, DependencyStatus>;
}

const CHECK_TIMEOUT_MS = 2_000;

/** Pings every dependency in parallel, each bounded by a timeout, and records the result in the dependency gauge. */
export function createReadinessCheck(deps: { mongo: Connection; redis: Redis; temporal: Client; metrics: Metrics }) {
  const probes: Record<DependencyName, () => Promise<unknown>> = {
    mongo: () => pingMongo(deps.mongo),
    redis: () => deps.redis.ping(),
    // The deadline ends the client's own gRPC retries with the probe, so probes during an outage do not pile up.
    temporal: () =>
      deps.temporal.connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () =>
        deps.temporal.workflowService.describeNamespace({ namespace: deps.temporal.options.namespace }),
      ),
  };

  return async function checkReadiness(): Promise<ReadinessReport> {
    const entries = await Promise.all(
      (Object.keys(probes) as DependencyName[]).map(async (name): Promise<[DependencyName, DependencyStatus]> => {
        const started = performance.now();
        try {
          await withDeadline(probes[name](), CHECK_TIMEOUT_MS, `${name} readiness probe`);
          deps.metrics.dependencyUp.set({ dependency: name }, 1);
          return [name, { status: 'up', latencyMs: Math.round(performance.now() - started) }];
        } catch (err) {
          deps.metrics.dependencyUp.set({ dependency: name }, 0);
          // Only a short class of error reaches the caller: no hostnames, credentials or stack traces.
          const error = err instanceof DeadlineExceededError ? 'timeout' : 'unreachable';
          return [name, { status: 'down', latencyMs: Math.round(performance.now() - started), error }];
        }
      }),
    );
    const checks = Object.fromEntries(entries) as Record<DependencyName, DependencyStatus>;
    return { status: entries.every(([, s]) => s.status === 'up') ? 'ready' : 'not_ready', checks };
  };
}

import { ApplicationFailure } from '@temporalio/activity';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { probeModel, systemCheckModel } from '../../src/db/models/systemCheck';
import type { Logger } from '../../src/logging/logger';
import { redactString } from '../../src/logging/redact';
import type { ProbeResult, SystemCheckReport } from '../../workflows/system/shared';

export interface SystemActivityDeps {
  mongo: Connection;
  redis: Redis;
  logger: Logger;
}

const PROBE_KEY_TTL_SECONDS = 3600;

/** Activities of the system-check workflow. Each is idempotent: keyed writes by check id, then a read-back. */
export function createSystemActivities({ mongo, redis, logger }: SystemActivityDeps) {
  const probes = probeModel(mongo);
  const reports = systemCheckModel(mongo);

  return {
    async probeMongo(checkId: string): Promise<ProbeResult> {
      const started = performance.now();
      try {
        const writtenAt = new Date();
        await probes.updateOne({ _id: checkId }, { $set: { writtenAt } }, { upsert: true });
        const back = await probes.findById(checkId).lean();
        if (!back) throw new Error('probe document not found after write');
      } catch (err) {
        throw probeFailure('mongo', err);
      }
      const latencyMs = Math.round(performance.now() - started);
      logger.debug('mongo probe answered', { latencyMs });
      return { dependency: 'mongo', ok: true, latencyMs };
    },

    async probeRedis(checkId: string): Promise<ProbeResult> {
      const started = performance.now();
      const key = `system-check:${checkId}`;
      try {
        await redis.set(key, checkId, 'EX', PROBE_KEY_TTL_SECONDS);
        const back = await redis.get(key);
        if (back !== checkId) throw new Error('probe key did not read back');
      } catch (err) {
        throw probeFailure('redis', err);
      }
      const latencyMs = Math.round(performance.now() - started);
      logger.debug('redis probe answered', { latencyMs });
      return { dependency: 'redis', ok: true, latencyMs };
    },

    async recordSystemCheck(report: SystemCheckReport): Promise<void> {
      await reports.replaceOne({ _id: report.checkId }, { _id: report.checkId, ...report }, { upsert: true });
      logger.info('system check recorded', { checkId: report.checkId, status: report.status });
    },
  };
}

export type SystemActivities = ReturnType<typeof createSystemActivities>;

function probeFailure(dependency: string, err: unknown): ApplicationFailure {
  const message = err instanceof Error ? err.message : String(err);
  // Retryable: a dependency that is briefly away may answer on the next attempt.
  return ApplicationFailure.retryable(`${dependency} probe failed: ${redactString(message)}`, 'DependencyUnavailable');
}

import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { Logger } from '../logging/logger';

const LEVELS: Record<LogLevel, string> = { TRACE: 'silly', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * Routes the Temporal Runtime's logs (core, worker, and the workflow and activity `log` APIs) into winston, so
 * they get the same redaction and fields as every other line. Workflow and activity metadata already carries
 * workflowId, runId, workflowType and activityType.
 */
export function temporalLoggerFrom(logger: Logger): TemporalLogger {
  const log = (level: LogLevel, message: string, meta?: LogMetadata): void => {
    logger.log(LEVELS[level], message, { ...meta });
  };
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}

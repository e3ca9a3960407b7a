import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';
import { redact, redactString } from './redact';

/** Context that follows a request or an activity through async calls and is stamped on every log line. */
export interface LogContext {
  requestId?: string;
  workflowId?: string;
  runId?: string;
  workflowType?: string;
  activityType?: string;
  activityId?: string;
}

const contextStorage = new AsyncLocalStorage<LogContext>();

export function runWithLogContext<T>(context: LogContext, fn: () => T): T {
  const merged = { ...contextStorage.getStore(), ...context };
  return contextStorage.run(merged, fn);
}

export function currentLogContext(): LogContext | undefined {
  return contextStorage.getStore();
}

export interface LoggerOptions {
  service: string;
  deploySha: string;
  level: string;
  format: 'json' | 'pretty';
  /** Extra destination, used by tests that scan everything a process logged. */
  transports?: winston.transport[];
}

export type Logger = winston.Logger & { onChain: winston.Logger };

const redactFormat = winston.format((info) => {
  const { level, message, ...rest } = info;
  const cleaned = redact(rest) as Record<string, unknown>;
  for (const key of Object.keys(rest)) delete (info as Record<string, unknown>)[key];
  Object.assign(info, cleaned);
  info.level = level;
  info.message = typeof message === 'string' ? redactString(message) : redact(message);
  return info;
});

const contextFormat = winston.format((info) => {
  const context = contextStorage.getStore();
  if (context) {
    for (const [key, value] of Object.entries(context)) {
      if (value !== undefined && info[key] === undefined) info[key] = value;
    }
  }
  return info;
});

const prettyLine = winston.format.printf((info) => {
  const { timestamp, level, message, service, deploySha: _sha, ...rest } = info;
  const extras = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${String(timestamp)} ${String(service)} ${level}: ${String(message)}${extras}`;
});

/**
 * One logger per process. Redaction runs inside the logger itself, so nothing reaches a transport unredacted,
 * whichever code path produced the line.
 */
export function createLogger(options: LoggerOptions): Logger {
  const base = winston.format.combine(contextFormat(), redactFormat(), winston.format.timestamp());
  const logger = winston.createLogger({
    level: options.level,
    defaultMeta: { service: options.service, deploySha: options.deploySha },
    format:
      options.format === 'json'
        ? winston.format.combine(base, winston.format.json())
        : winston.format.combine(base, winston.format.colorize(), prettyLine),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn'] }), ...(options.transports ?? [])],
  }) as Logger;
  logger.onChain = logger.child({ channel: 'on-chain' });
  return logger;
}

import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import type { AppConfig } from '../../src/config';
import { connectMongo } from '../../src/db/mongo';
import { connectTemporalClient } from '../../src/temporal/connection';

/** What each command module gets from the program: the loaded config, and whether output is JSON. */
export interface CliContext {
  withConfig(fn: (config: AppConfig) => Promise<number>): Promise<void>;
  json(): boolean;
}

/**
 * Exit codes of every command: 0 success, 1 it ran and failed or found a problem, 2 usage, 3 unreachable, 4 config,
 * 5 incomplete: every check made passed, but some could not be made (verify-proof without headers).
 */
export const EXIT = { ok: 0, problem: 1, usage: 2, unreachable: 3, config: 4, incomplete: 5 } as const;

export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface Output {
  json: boolean;
  progress(line: string): void;
  result(value: unknown, human: string): void;
}

export function output(json: boolean): Output {
  return {
    json,
    // Progress goes to stderr so stdout stays machine-readable with --json.
    progress: (line) => process.stderr.write(`${line}\n`),
    result: (value, human) => process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`),
  };
}

export async function connectTemporal(config: AppConfig): Promise<Client> {
  return connectTemporalClient(config.temporal).catch((err: unknown) => {
    throw new CliFailure(`cannot reach Temporal at ${config.temporal.address}: ${(err as Error).message}`, EXIT.unreachable);
  });
}

/** Where an operator sees the run in the Temporal Web UI, when its address is configured. */
export function webUiLink(config: AppConfig, workflowId: string, runId: string): string | undefined {
  if (!config.temporal.uiUrl) return undefined;
  return `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}

/** Runs `fn` with a MongoDB connection, closed afterwards; an unreachable database exits 3. */
export async function withMongo<T>(config: AppConfig, fn: (mongo: Connection) => Promise<T>): Promise<T> {
  const mongo = await connectMongo(config.mongo).catch((err: unknown) => {
    throw new CliFailure(`cannot reach MongoDB: ${(err as Error).message}`, EXIT.unreachable);
  });
  try {
    return await fn(mongo);
  } finally {
    await mongo.close();
  }
}

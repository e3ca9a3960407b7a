/**
 * What the dev/test stand-ins (dev KMS, chain simulator) read from the environment. They are separate processes
 * that must refuse to run in production, and only src/config reads process.env.
 */
export interface StandInEnvironment {
  /** Lower-cased and trimmed; `development` when unset, as for the product's processes. */
  nodeEnv: string;
}

export function standInEnvironment(env: Record<string, string | undefined> = process.env): StandInEnvironment {
  const nodeEnv = (env.NODE_ENV ?? '').trim().toLowerCase();
  return { nodeEnv: nodeEnv === '' ? 'development' : nodeEnv };
}

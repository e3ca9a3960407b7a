import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Network } from './addresses';
import type { ChainSnapshot } from './state';

/** The simulator's chains as one JSON file, so a dev stack keeps its funded outputs across restarts. */
export interface SimulatorSnapshot {
  version: 1;
  chains: Record<Network, ChainSnapshot>;
}

export function loadSnapshot(file: string): SimulatorSnapshot | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const snapshot = JSON.parse(text) as SimulatorSnapshot;
  if (snapshot.version !== 1 || !snapshot.chains?.main || !snapshot.chains?.test) {
    throw new Error(`${file} is not a chain-simulator snapshot (version 1)`);
  }
  return snapshot;
}

/**
 * Writes are coalesced: a burst of broadcasts costs one write after `delayMs`. Each write goes to a temporary file
 * first and is renamed over the old one, so a crash never leaves half a snapshot.
 */
export function createSnapshotWriter(
  file: string,
  snapshot: () => SimulatorSnapshot,
  options: { delayMs?: number; onError?: (err: unknown) => void } = {},
) {
  let timer: NodeJS.Timeout | undefined;
  const write = () => {
    timer = undefined;
    mkdirSync(path.dirname(file), { recursive: true });
    const temporary = `${file}.tmp`;
    writeFileSync(temporary, JSON.stringify(snapshot()));
    renameSync(temporary, file);
  };
  return {
    schedule(): void {
      timer ??= setTimeout(() => {
        try {
          write();
        } catch (err) {
          options.onError?.(err);
        }
      }, options.delayMs ?? 100);
    },
    flush(): void {
      if (timer) clearTimeout(timer);
      write();
    },
    cancel(): void {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

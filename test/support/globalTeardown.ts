import { rmSync } from 'node:fs';
import { stopServices, type TestStackState } from './globalSetup';

/** Stops the services globalSetup started and removes its scratch directory (databases, logs, the workflow bundle). */
export default async function globalTeardown(): Promise<void> {
  const state = globalThis as TestStackState;
  await stopServices(state.__patchproofServices ?? []);
  if (state.__patchproofScratch) rmSync(state.__patchproofScratch, { recursive: true, force: true });
}

import type { RunningService } from '../../ops/dev-stack/services';

export default async function globalTeardown(): Promise<void> {
  const services = (globalThis as { __patchproofServices?: RunningService[] }).__patchproofServices ?? [];
  for (const service of [...services].reverse()) await service.stop();
}

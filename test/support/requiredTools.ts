/**
 * Tests that need an optional tool (shellcheck, promtool, Prometheus) skip, saying why, on a machine without it.
 * Under CI (`CI=true`) nothing is skipped: provisioning must have installed the tool, and a missing one fails.
 */
export const toolsRequired = process.env.CI === 'true' || process.env.CI === '1';

/** `it` when the tool is there or required (a missing required tool then fails the test), else `it.skip`. */
export function itWithTool(present: unknown): jest.It {
  return present || toolsRequired ? it : it.skip;
}

/** The same for a whole `describe` block. */
export function describeWithTool(present: unknown): jest.Describe {
  return present || toolsRequired ? describe : describe.skip;
}

/** The tool's path, or a failure naming it: for use inside a test that `itWithTool` ran under CI. */
export function requireTool<T>(tool: T | null | undefined, name: string): T {
  if (tool === null || tool === undefined)
    throw new Error(`${name} is not available, and CI=true skips no test: provisioning should have installed it`);
  return tool;
}

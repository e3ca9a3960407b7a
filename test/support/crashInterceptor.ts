import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';

/**
 * The crash matrix's activity interceptor, loaded by a test worker through WORKER_TEST_INTERCEPTOR_MODULE
 * (NODE_ENV=test only). Armed with a crash point `<activityType>:<before|after>:<n>`, it SIGKILLs its own process at
 * the n-th distinct activity of that type (first attempts only, so a retry never counts twice) whose workflow id
 * matches the scope (a regular expression):
 *
 * - `before`: the activity has started (the server has recorded the attempt) and its code has not run;
 * - `after`: its code has returned (its effects are done) and the result has not been reported.
 *
 * Armed either for the process's life (`CRASH_AT`, `CRASH_SCOPE`, `CRASH_MARKER`), or through `CRASH_CONTROL`, a
 * JSON file `{ cell, at, scope, marker }` read at each activity start, so one worker process can recover one cell and
 * be armed for the next (the harness arms a cell only once the previous one has finished; counting starts then).
 * Before dying it appends one line naming the activity to the marker file; a crash point whose marker exists has
 * fired and never fires again, in this process or the next.
 */
interface CrashPoint {
  cell: string;
  activityType: string;
  phase: 'before' | 'after';
  occurrence: number;
  scope?: RegExp;
  marker?: string;
}

export function parseCrashPoint(at: string, cell: string, scope?: string, marker?: string): CrashPoint {
  const match = /^([A-Za-z0-9_]+):(before|after):([1-9][0-9]*)$/.exec(at);
  if (!match) throw new Error(`a crash point is <activityType>:<before|after>:<n>, not ${at}`);
  return {
    cell,
    activityType: match[1]!,
    phase: match[2] as CrashPoint['phase'],
    occurrence: Number(match[3]),
    ...(scope && { scope: new RegExp(scope) }),
    ...(marker && { marker }),
  };
}

const fixed = process.env.CRASH_AT
  ? parseCrashPoint(process.env.CRASH_AT, 'env', process.env.CRASH_SCOPE, process.env.CRASH_MARKER)
  : undefined;

/** The crash point armed now: the environment's, or the control file's. */
function armedPoint(): CrashPoint | undefined {
  if (fixed) return fixed;
  const control = process.env.CRASH_CONTROL;
  if (!control || !existsSync(control)) return undefined;
  const text = readFileSync(control, 'utf8').trim();
  if (!text) return undefined;
  const { cell, at, scope, marker } = JSON.parse(text) as { cell: string; at: string; scope?: string; marker?: string };
  return parseCrashPoint(at, cell, scope, marker);
}

/** Activities of the armed type counted per cell, so re-arming for another cell starts again from zero. */
const seen = new Map<string, Set<string>>();

function die(context: Context, point: CrashPoint): never {
  const info = context.info;
  const line = JSON.stringify({
    cell: point.cell,
    phase: point.phase,
    activityType: info.activityType,
    workflowId: info.workflowExecution?.workflowId,
    activityId: info.activityId,
  });
  if (point.marker) appendFileSync(point.marker, `${line}\n`);
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL to oneself is delivered before kill() returns; should it not be, never report anything.
  throw new Error('SIGKILL did not end the worker');
}

class CrashInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly context: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const info = this.context.info;
    const point = armedPoint();
    const workflowId = info.workflowExecution?.workflowId ?? '';
    let armed = false;
    if (
      point &&
      info.activityType === point.activityType &&
      info.attempt === 1 &&
      (!point.scope || point.scope.test(workflowId)) &&
      !(point.marker && existsSync(point.marker))
    ) {
      const counted = seen.get(point.cell) ?? new Set<string>();
      seen.set(point.cell, counted);
      counted.add(`${workflowId}/${info.workflowExecution?.runId ?? ''}/${info.activityId}`);
      armed = counted.size === point.occurrence;
    }
    if (armed && point?.phase === 'before') die(this.context, point);
    const result = await next(input);
    if (armed && point?.phase === 'after') die(this.context, point);
    return result;
  }
}

export const activityInterceptors: ActivityInterceptorsFactory[] = [(ctx) => ({ inbound: new CrashInterceptor(ctx) })];

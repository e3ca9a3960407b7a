import { appendFileSync } from 'node:fs';
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';

/**
 * The crash matrix's activity interceptor, loaded by a test worker through WORKER_TEST_INTERCEPTOR_MODULE
 * (NODE_ENV=test only). With `CRASH_AT=<activityType>:<before|after>:<n>` it SIGKILLs its own process at the n-th
 * distinct activity of that type (first attempts only, so a retry never counts twice) whose workflow id matches
 * `CRASH_SCOPE` (a regular expression; every workflow when unset):
 *
 * - `before`: the activity has started (the server has recorded the attempt) and its code has not run;
 * - `after`: its code has returned (its effects are done) and the result has not been reported.
 *
 * Before dying it appends one line to `CRASH_MARKER` (a file) naming the activity, so the harness knows the kill
 * happened where it asked. A worker started without CRASH_AT only counts nothing.
 */
interface CrashPoint {
  activityType: string;
  phase: 'before' | 'after';
  occurrence: number;
}

export function parseCrashPoint(spec: string | undefined): CrashPoint | undefined {
  if (!spec) return undefined;
  const match = /^([A-Za-z0-9_]+):(before|after):([1-9][0-9]*)$/.exec(spec);
  if (!match) throw new Error(`CRASH_AT must be <activityType>:<before|after>:<n>, not ${spec}`);
  return { activityType: match[1]!, phase: match[2] as CrashPoint['phase'], occurrence: Number(match[3]) };
}

const point = parseCrashPoint(process.env.CRASH_AT);
const scope = process.env.CRASH_SCOPE ? new RegExp(process.env.CRASH_SCOPE) : undefined;
const seen = new Set<string>();

function die(context: Context, phase: string): never {
  const info = context.info;
  const line = JSON.stringify({
    phase,
    activityType: info.activityType,
    workflowId: info.workflowExecution?.workflowId,
    activityId: info.activityId,
  });
  if (process.env.CRASH_MARKER) appendFileSync(process.env.CRASH_MARKER, `${line}\n`);
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is not deliverable late: the process is gone before this line. Should it not be, never report anything.
  throw new Error('SIGKILL did not end the worker');
}

class CrashInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly context: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const info = this.context.info;
    let armed = false;
    const workflowId = info.workflowExecution?.workflowId ?? '';
    if (point && info.activityType === point.activityType && info.attempt === 1 && (!scope || scope.test(workflowId))) {
      seen.add(`${workflowId}/${info.activityId}`);
      armed = seen.size === point.occurrence;
    }
    if (armed && point?.phase === 'before') die(this.context, 'before');
    const result = await next(input);
    if (armed && point?.phase === 'after') die(this.context, 'after');
    return result;
  }
}

export const activityInterceptors: ActivityInterceptorsFactory[] = [(ctx) => ({ inbound: new CrashInterceptor(ctx) })];

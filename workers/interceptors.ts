import { type Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { runWithLogContext } from '../src/logging/logger';

/**
 * Runs every activity inside a log context carrying its workflow id, run id, activity type and id, so that lines
 * logged through our winston logger from activity code can be traced to the workflow in the Web UI.
 */
export class ActivityLogContextInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly context: Context) {}

  execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const info = this.context.info;
    return runWithLogContext(
      {
        workflowId: info.workflowExecution?.workflowId,
        runId: info.workflowExecution?.runId,
        workflowType: info.workflowType,
        activityType: info.activityType,
        activityId: info.activityId,
      },
      () => next(input),
    );
  }
}

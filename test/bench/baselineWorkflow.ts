import { proxyActivities } from '@temporalio/workflow';

/** The activity of the baseline: does nothing, so the figure is Temporal's own cost of one workflow and one task. */
export interface BaselineActivities {
  benchNoop(input: { index: number }): Promise<number>;
}

const { benchNoop } = proxyActivities<BaselineActivities>({ startToCloseTimeout: '1 minute' });

/** A bare workflow with one activity: the registrations benchmark's baseline on the same Temporal server. */
export async function benchBaselineWorkflow(index: number): Promise<number> {
  return benchNoop({ index });
}

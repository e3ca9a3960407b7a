/** Task-queue names, shared by workers, launchers and tests. */
export const TASK_QUEUES = {
  /** Orchestration and the activities that touch only our own stores. */
  main: 'patchproof-main',
} as const;

export type TaskQueueName = (typeof TASK_QUEUES)[keyof typeof TASK_QUEUES];

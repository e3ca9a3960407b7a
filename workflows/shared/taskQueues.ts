/** Task-queue names, shared by workers, launchers and tests. */
export const TASK_QUEUES = {
  /** Orchestration and the activities that touch only our own stores. */
  main: 'patchproof-main',
  /** Email delivery: SMTP is slow and rate-limited, so it runs on its own worker (workers/email.ts). */
  email: 'patchproof-email',
} as const;

export type TaskQueueName = (typeof TASK_QUEUES)[keyof typeof TASK_QUEUES];

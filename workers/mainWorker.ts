import { type ActivityInterceptorsFactory, type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import type { WorkerVersioningConfig } from '../src/config';
import { TASK_QUEUES } from '../workflows/shared/taskQueues';
import { ActivityLogContextInterceptor } from './interceptors';
import { workerDeploymentOptions } from './versioning';

export interface MainWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: ActivityDeps;
  /** Prebuilt bundle (production); without it the workflows are bundled from source at start (dev, tests). */
  workflowBundlePath?: string;
  shutdownGraceMs?: number;
  shutdownForceMs?: number;
  taskQueue?: string;
  /** Worker Deployment versioning; absent, the worker is unversioned. */
  versioning?: WorkerVersioningConfig;
  /** Test only: activity interceptors added after ours (WORKER_TEST_INTERCEPTOR_MODULE, NODE_ENV=test). */
  testActivityInterceptors?: ActivityInterceptorsFactory[];
  /** Extra options, e.g. a small cache in tests that kill workers. */
  overrides?: Partial<WorkerOptions>;
}

/** The main task queue's worker: every workflow, and the activities that touch only our own stores. */
export function createMainWorker(options: MainWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue ?? TASK_QUEUES.main,
    ...(options.workflowBundlePath
      ? { workflowBundle: { codePath: options.workflowBundlePath } }
      : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities(options.deps),
    interceptors: {
      activity: [(ctx) => ({ inbound: new ActivityLogContextInterceptor(ctx) }), ...(options.testActivityInterceptors ?? [])],
    },
    // Always bound shutdown: without a force time a stuck activity keeps worker.run() from ever settling.
    shutdownGraceTime: options.shutdownGraceMs ?? 30_000,
    shutdownForceTime: options.shutdownForceMs ?? 60_000,
    ...workerDeploymentOptions(options.versioning),
    ...options.overrides,
  });
}

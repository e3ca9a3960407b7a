import type { WorkerDeploymentOptions } from '@temporalio/worker';
import type { WorkerVersioningConfig } from '../src/config';

/**
 * The Worker Deployment options of every worker in one release: the same deployment name and build id on every
 * task queue, so the server moves a release's queues together when its version becomes current.
 */
export function workerDeploymentOptions(versioning: WorkerVersioningConfig | undefined): {
  workerDeploymentOptions?: WorkerDeploymentOptions;
} {
  if (!versioning) return {};
  return {
    workerDeploymentOptions: {
      version: { deploymentName: versioning.deploymentName, buildId: versioning.buildId },
      useWorkerVersioning: true,
      defaultVersioningBehavior: versioning.defaultBehavior,
    },
  };
}

import { DefaultLogger, Runtime } from '@temporalio/worker';

// The SDK's default runtime logs every worker state change at INFO; tests assert on outcomes, so keep warnings only.
// The runtime is per process and Jest reuses processes across files: only the first file installs it.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // already installed in this Jest worker
}

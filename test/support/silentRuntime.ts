import { DefaultLogger, Runtime } from '@temporalio/worker';

// Workflow-logic tests fail activities on purpose; the SDK logs each failed attempt at WARN, and the Java test
// server lacks capabilities the core warns about. Tests assert on outcomes, so keep errors only. The runtime is
// per process and Jest reuses processes across files: only the first file installs it.
try {
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
} catch {
  // already installed in this Jest worker
}

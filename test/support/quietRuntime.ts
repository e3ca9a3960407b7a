import { format } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { captureLogLine } from './runCapture';

// The SDK's default runtime logs every worker state change at INFO; tests assert on outcomes, so keep warnings only.
// Each line is printed as the SDK prints it and also copied to the run's capture directory for the secrets scan.
// The runtime is per process and Jest reuses processes across files: only the first file installs it.
try {
  Runtime.install({
    logger: new DefaultLogger('WARN', ({ level, timestampNanos, message, meta }) => {
      const time = new Date(Number(timestampNanos / 1_000_000n));
      const line = meta === undefined ? `${format(time)} [${level}] ${message}` : `${format(time)} [${level}] ${message} ${format(meta)}`;
      process.stderr.write(`${line}\n`);
      captureLogLine(line, 'temporal-runtime');
    }),
  });
} catch {
  // already installed in this Jest worker
}

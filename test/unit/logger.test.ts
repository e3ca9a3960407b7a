import Transport from 'winston-transport';
import { createLogger, runWithLogContext } from '../../src/logging/logger';
import { temporalLoggerFrom } from '../../src/temporal/runtimeLogger';

class Capture extends Transport {
  readonly lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(JSON.stringify(info)) as Record<string, unknown>);
    next();
  }
}

function capturedLogger() {
  const capture = new Capture();
  const logger = createLogger({ service: 'unit', deploySha: 'abc123', level: 'debug', format: 'json', transports: [capture] });
  logger.transports[0]!.silent = true;
  return { logger, capture };
}

describe('logger', () => {
  it('stamps service, DEPLOY_SHA and the request id of the current context on every line', () => {
    const { logger, capture } = capturedLogger();
    runWithLogContext({ requestId: 'req-1' }, () => logger.info('hello'));
    expect(capture.lines[0]).toMatchObject({ message: 'hello', service: 'unit', deploySha: 'abc123', requestId: 'req-1' });
  });

  it('redacts secrets in metadata and message before any transport sees them', () => {
    const { logger, capture } = capturedLogger();
    logger.warn('user carol@example.com sent x-api-key', {
      apiKey: 'k-secret',
      body: { code: '654321' },
      err: new Error('Bearer abcdefghijkl'),
    });
    const line = JSON.stringify(capture.lines[0]);
    expect(line).not.toContain('carol@example.com');
    expect(line).not.toContain('k-secret');
    expect(line).not.toContain('654321');
    expect(line).not.toContain('abcdefghijkl');
    expect(capture.lines[0]).toMatchObject({ apiKey: '[REDACTED]', body: { code: '[REDACTED]' } });
  });

  it('sends the on-chain channel through the same redaction', () => {
    const { logger, capture } = capturedLogger();
    logger.onChain.info('broadcast', { txid: 'ab'.repeat(32), privateKey: 'nope' });
    expect(capture.lines[0]).toMatchObject({ channel: 'on-chain', txid: 'ab'.repeat(32), privateKey: '[REDACTED]' });
  });

  it('routes Temporal runtime, workflow and activity logs into winston with their ids, redacted', () => {
    const { logger, capture } = capturedLogger();
    const temporalLogger = temporalLoggerFrom(logger);
    temporalLogger.info('Activity failed', {
      workflowId: 'wf-1',
      runId: 'run-1',
      activityType: 'probeRedis',
      token: 't0k3n',
      note: 'to dave@example.net',
    });
    temporalLogger.log('TRACE', 'noise');
    expect(capture.lines[0]).toMatchObject({
      level: 'info',
      workflowId: 'wf-1',
      runId: 'run-1',
      activityType: 'probeRedis',
      token: '[REDACTED]',
      note: 'to d***@example.net',
    });
    expect(capture.lines).toHaveLength(1);
  });
});

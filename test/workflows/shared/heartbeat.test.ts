import { CancelledFailure, Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { withHeartbeats } from '../../../activities/shared/heartbeat';

/** Interval of the helper in activities/shared/heartbeat.ts. */
const HEARTBEAT_EVERY_MS = 5_000;

describe('withHeartbeats', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('heartbeats its details at once and then periodically while the work runs, and stops when it is done', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => beats.push(details));
    let finish: (value: string) => void = () => undefined;
    const details = { step: 'signing', inputs: 3 };
    const running = env.run(() => withHeartbeats(details, () => new Promise<string>((resolve) => (finish = resolve))));

    expect(beats).toEqual([details]);
    await jest.advanceTimersByTimeAsync(2 * HEARTBEAT_EVERY_MS);
    expect(beats).toEqual([details, details, details]);
    finish('signed');
    await expect(running).resolves.toBe('signed');
    await jest.advanceTimersByTimeAsync(3 * HEARTBEAT_EVERY_MS);
    expect(beats).toHaveLength(3);
  });

  it('lets the work see a cancellation and stops heartbeating', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => beats.push(details));
    const running = env.run(() =>
      withHeartbeats({ step: 'broadcasting' }, async () => {
        await Context.current().cancelled;
        return 'never';
      }),
    );
    env.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    const counted = beats.length;
    await jest.advanceTimersByTimeAsync(3 * HEARTBEAT_EVERY_MS);
    expect(beats).toHaveLength(counted);
  });

  it('passes the work’s own failure on', async () => {
    const env = new MockActivityEnvironment();
    const failure = new Error('KMS said no');
    await expect(env.run(() => withHeartbeats({ step: 'signing' }, () => Promise.reject(failure)))).rejects.toBe(failure);
  });
});

import { CircuitBreaker, CircuitOpenError, type CircuitState } from '../../../src/resilience/circuitBreaker';
import { DeadlineExceededError, withDeadline } from '../../../src/resilience/deadline';
import { isDependencyUnavailable } from '../../../src/resilience/unavailable';

const stalled = () => Promise.reject(new Error('Command timed out'));
const answered = () => Promise.resolve('ok');
const refusedByServer = () => Promise.reject(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'));

function breaker(openMs = 50) {
  const states: CircuitState[] = [];
  const circuit = new CircuitBreaker({ dependency: 'redis', failureThreshold: 3, openMs, onStateChange: (s) => states.push(s) });
  return { circuit, states };
}

describe('circuit breaker', () => {
  it('opens after three consecutive stalls and then refuses calls without making them', async () => {
    const { circuit, states } = breaker();
    for (let i = 0; i < 3; i++) await expect(circuit.run(stalled, isDependencyUnavailable)).rejects.toThrow('Command timed out');
    expect(states).toEqual(['open']);
    const call = jest.fn(answered);
    await expect(circuit.run(call, isDependencyUnavailable)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(call).not.toHaveBeenCalled();
    circuit.close();
  });

  it('does not count an answer that is an error (the dependency answered) as a stall', async () => {
    const { circuit, states } = breaker();
    await expect(circuit.run(stalled, isDependencyUnavailable)).rejects.toThrow();
    await expect(circuit.run(stalled, isDependencyUnavailable)).rejects.toThrow();
    await expect(circuit.run(refusedByServer, isDependencyUnavailable)).rejects.toThrow('WRONGTYPE');
    await expect(circuit.run(stalled, isDependencyUnavailable)).rejects.toThrow();
    expect(states).toEqual([]);
    expect(circuit.state).toBe('closed');
  });

  it('half-opens after its open time, closes on the first probe that succeeds, and reopens on one that stalls', async () => {
    const { circuit, states } = breaker(30);
    for (let i = 0; i < 3; i++) await circuit.run(stalled, isDependencyUnavailable).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 60));
    expect(circuit.state).toBe('half_open');
    await circuit.run(stalled, isDependencyUnavailable).catch(() => undefined);
    expect(circuit.state).toBe('open');
    await new Promise((r) => setTimeout(r, 60));
    await expect(circuit.run(answered, isDependencyUnavailable)).resolves.toBe('ok');
    expect(states).toEqual(['open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('stays closed when a success arrives before the open timer would have half-opened it', async () => {
    const { circuit, states } = breaker(30);
    for (let i = 0; i < 3; i++) circuit.recordFailure();
    circuit.recordSuccess();
    await new Promise((r) => setTimeout(r, 60));
    expect(states).toEqual(['open', 'closed']);
  });
});

describe('deadlines', () => {
  it('rejects with DeadlineExceededError when the call outlives its budget, and passes an earlier answer through', async () => {
    await expect(withDeadline(new Promise(() => undefined), 20, 'a frozen call')).rejects.toBeInstanceOf(DeadlineExceededError);
    await expect(withDeadline(Promise.resolve(7), 1_000, 'a quick call')).resolves.toBe(7);
  });

  it('classes stalls, timeouts and open circuits as an unavailable dependency (503), and other errors not', () => {
    expect(isDependencyUnavailable(new Error('Command timed out'))).toBe(true);
    expect(isDependencyUnavailable(new CircuitOpenError('mongo'))).toBe(true);
    expect(isDependencyUnavailable(Object.assign(new Error('late'), { name: 'MongoNetworkTimeoutError' }))).toBe(true);
    expect(isDependencyUnavailable(new Error('wrapped', { cause: new CircuitOpenError('temporal') }))).toBe(true);
    expect(isDependencyUnavailable(new Error('WRONGTYPE'))).toBe(false);
  });
});

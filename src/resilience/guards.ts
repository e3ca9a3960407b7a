import type { Connection as TemporalConnection, WorkflowClientInterceptor } from '@temporalio/client';
import type { Redis } from 'ioredis';
import type { Connection as MongoConnection } from 'mongoose';
import type { CircuitBreaker } from './circuitBreaker';
import { isDependencyUnavailable } from './unavailable';

/**
 * Where the API's circuit breakers sit: at each client's own boundary, so every caller (routes, the SVD store, the
 * rate-limit store) is covered without knowing about them. The deadlines themselves are the clients' own options
 * (ioredis `commandTimeout`, the driver's `timeoutMS`, gRPC deadlines).
 */

/**
 * Every Redis command passes the breaker: while it is open, commands are refused before they are written, so none
 * queue behind a stalled server. Commands of the connection handshake (status not yet `ready`) always pass.
 */
export function guardRedisCommands(redis: Redis, breaker: CircuitBreaker): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    if (redis.status === 'ready') {
      try {
        breaker.check();
      } catch (err) {
        command.reject(err as Error);
        return command.promise;
      }
      command.promise.then(
        () => breaker.recordSuccess(),
        (err: unknown) => (isDependencyUnavailable(err) ? breaker.recordFailure() : breaker.recordSuccess()),
      );
    }
    return send(command, stream);
  };
}

/**
 * Every operation on the connection passes the breaker: mongoose emits `operation-start` synchronously before it
 * calls the driver, so a listener that throws refuses the operation. Outcomes come from the driver, each failure
 * once: command results (needs `monitorCommands`), connections that could not be opened for an operation, servers
 * that could not be selected, and the server heartbeats, which also probe a stalled server by themselves.
 */
export function guardMongoOperations(connection: MongoConnection, breaker: CircuitBreaker): void {
  connection.on('operation-start', () => breaker.check());
  // A server that cannot be selected fails the operation before any command or connection event.
  connection.on('operation-end', (event: { error?: unknown }) => {
    if (event.error instanceof Error && event.error.name === 'MongoServerSelectionError') breaker.recordFailure();
  });
  const client = connection.getClient();
  client.on('commandSucceeded', () => breaker.recordSuccess());
  client.on('commandFailed', (event) => (isDependencyUnavailable(event.failure) ? breaker.recordFailure() : breaker.recordSuccess()));
  client.on('connectionCheckOutFailed', (event) => {
    if (event.reason === 'connectionError' || event.reason === 'timeout') breaker.recordFailure();
  });
  client.on('serverHeartbeatSucceeded', () => breaker.recordSuccess());
  client.on('serverHeartbeatFailed', () => breaker.recordFailure());
}

/**
 * A deadline on every workflow call of the Temporal client (start, signal, query, describe, update, terminate,
 * cancel), which also ends the client's own gRPC retries, and the breaker around it.
 */
export function guardTemporalCalls(connection: TemporalConnection, breaker: CircuitBreaker, timeoutMs: number): WorkflowClientInterceptor {
  const guarded = <I, O>(next: (input: I) => Promise<O>, input: I): Promise<O> =>
    breaker.run(() => connection.withDeadline(Date.now() + timeoutMs, () => next(input)), isDependencyUnavailable);
  return {
    start: (input, next) => guarded(next, input),
    startWithDetails: (input, next) => guarded(next, input),
    startUpdate: (input, next) => guarded(next, input),
    startUpdateWithStart: (input, next) => guarded(next, input),
    signal: (input, next) => guarded(next, input),
    signalWithStart: (input, next) => guarded(next, input),
    query: (input, next) => guarded(next, input),
    describe: (input, next) => guarded(next, input),
    terminate: (input, next) => guarded(next, input),
    cancel: (input, next) => guarded(next, input),
  };
}

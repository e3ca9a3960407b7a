import { isGrpcServiceError } from '@temporalio/client';
import { isKmsError } from '../kms/errors';
import { WocError } from '../woc/errors';
import { CircuitOpenError } from './circuitBreaker';

// gRPC UNAVAILABLE and DEADLINE_EXCEEDED from Temporal; connection-level failures and deadlines of the Mongo and
// Redis drivers.
const UNAVAILABLE_GRPC_CODES = new Set([14, 4]);
const UNAVAILABLE_ERROR_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoNotConnectedError',
  'MongoOperationTimeoutError',
  'MaxRetriesPerRequestError',
  'CircuitOpenError',
]);
const UNAVAILABLE_REDIS_MESSAGES = [
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Connection is closed.',
  'Command timed out',
];

/**
 * True when the error, or an error it wraps, means a dependency could not be reached or did not answer in time
 * (a 503, not a 500). The circuit breakers count the same errors as failures.
 */
export function isDependencyUnavailable(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof CircuitOpenError) return true;
    if (isGrpcServiceError(current) && UNAVAILABLE_GRPC_CODES.has(current.code)) return true;
    if (UNAVAILABLE_ERROR_NAMES.has(current.name) || UNAVAILABLE_REDIS_MESSAGES.includes(current.message)) return true;
    // The chain service or the KMS failing in a way a retry could fix: "cannot answer now", not a server fault.
    if ((current instanceof WocError || isKmsError(current)) && current.retryable) return true;
    current = current.cause;
  }
  return false;
}

import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { KmsKeyPurpose } from '../../src/rotation/ids';
import type { SweepReport } from '../pool/shared';

/**
 * Messages and types of the key rotation workflows, shared by the workflows, their activities and their callers
 * (API, CLI). Dependency-free apart from the message definitions.
 */

export type RotationTrigger = 'api' | 'cli' | 'test';

export interface KmsRotationInput {
  purpose: KmsKeyPurpose;
  newKeyIdentifier: string;
  /** Operator (CLI: the OS user) or `api`; recorded in the history. */
  requestedBy: string;
  /**
   * The credential that started it: an API key id (`bootstrap` for API_KEY) or `cli:<user>`. An approval must come
   * from another one. Absent in rotations started before the rule, which accept any approver.
   */
  startedByKeyId?: string;
  trigger: RotationTrigger;
  /** Approves the cutover by itself after this duration (`24h`); null waits for an approval signal. */
  autoApproveAfter: string | null;
  /** Days the old key keeps verifying after the cutover. */
  gracePeriodDays: number;
  /** Asks the KMS to disable the old key at retirement. */
  disableOldKeyInKms: boolean;
  /** How long every process may keep an old view of the key settings (KEY_SETTINGS_CACHE_MS). */
  settingsCacheMs: number;
}

export interface KeyInfo {
  keyIdentifier: string;
  pubKeyHex: string;
  /** Funding keys: the P2PKH address. */
  address?: string;
}

export type KmsRotationStep =
  | 'preflight'
  | 'staging'
  | 'awaiting_approval'
  | 'cancelling'
  | 'cutover'
  | 'moving_funds'
  | 'grace_period'
  | 'retiring'
  | 'completed'
  | 'cancelled';

export interface KmsRotationStatus {
  purpose: KmsKeyPurpose;
  step: KmsRotationStep;
  requestedBy: string;
  startedByKeyId?: string;
  oldKey?: KeyInfo;
  newKey?: KeyInfo;
  startedAt: string;
  stagedAt?: string;
  /** When the rotation approves itself unless an operator does first. */
  autoApproveAt?: string;
  approvedBy?: string;
  /** The credential that approved (never the one that started). */
  approvedByKeyId?: string;
  approvedAt?: string;
  cancelledBy?: string;
  cancelledAt?: string;
  cutoverAt?: string;
  graceEndsAt?: string;
  retiredAt?: string;
  /** Funding rotations: the sweeps that moved the old address's outputs to the new one. */
  sweeps: SweepReport[];
  /** Signals that arrived when they no longer applied (e.g. a cancel after the cutover). */
  refused: { signal: string; by: string; at: string; reason: string }[];
}

export interface KmsRotationReport extends KmsRotationStatus {
  outcome: 'completed' | 'cancelled';
}

export interface OperatorAction {
  /** Who: an operator name or `api`. */
  by: string;
  /** The credential that sent it: an API key id or `cli:<user>`. */
  keyId?: string;
  reason?: string;
}

/** Memo of a KMS rotation run: who started it, readable with `describe()` before any query handler exists. */
export interface KmsRotationMemo {
  startedByKeyId: string;
}

/** Refusal reason (status.refused) of an approval sent with the credential that started the rotation. */
export const APPROVER_IS_STARTER_REASON = 'the approving credential started this rotation; another key must approve';

export const approveRotationSignal = defineSignal<[OperatorAction]>('approveRotation');
export const cancelRotationSignal = defineSignal<[OperatorAction]>('cancelRotation');
export const kmsRotationStatusQuery = defineQuery<KmsRotationStatus>('kmsRotationStatus');

export interface JwtRotationInput {
  requestedBy: string;
  trigger: RotationTrigger;
  /** The new kid; unset: one is made up from the time (`jwt-<yyyymmddhhmmss>`). */
  newKid?: string;
  /** Longest lifetime of any token plus the verification clock skew, in seconds. */
  tokenLifetimeSec: number;
  settingsCacheMs: number;
}

export type JwtRotationStep = 'adding' | 'propagating' | 'activating' | 'draining' | 'removing' | 'completed';

export interface JwtRotationStatus {
  step: JwtRotationStep;
  requestedBy: string;
  newKid?: string;
  previousKid?: string;
  startedAt: string;
  activatedAt?: string;
  /** When the last token the previous kid signed has expired, and the kid is removed. */
  removeAt?: string;
  removedAt?: string;
}

export const jwtRotationStatusQuery = defineQuery<JwtRotationStatus>('jwtRotationStatus');

/** Failure types of the rotation activities. */
export const ROTATION_FAILURES = {
  preflight: 'RotationPreflightFailed',
  sameKey: 'RotationSameKey',
  kmsRejected: 'KmsRejected',
  unknownKid: 'JwtKidInvalid',
} as const;

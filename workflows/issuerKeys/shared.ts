import type { RotationTrigger } from '../rotation/shared';

/**
 * Types of the issuer key revocation workflow, shared by the workflow, its activities and its callers (API, CLI).
 * Dependency-free.
 */

export interface IssuerKeyRevocationInput {
  /** The key identifier the directory lists (`issuer`, `issuer@2`). */
  kid: string;
  /** Why; recorded in the history, the memo and the store, and published in the directory. No personal data. */
  reason: string;
  /** ISO time from which the key's signatures are not the issuer's: the earliest it may have been exposed. Absent: now. */
  revokedAt?: string;
  /** Operator (CLI: `cli:<user>`) or `api`. */
  requestedBy: string;
  trigger: RotationTrigger;
  /** Revoke even a key that signs now or is staged to: its new records then verify as revoked-key. */
  force: boolean;
  /** KEY_SETTINGS_CACHE_MS: how long a process may keep verifying without the revocation. */
  settingsCacheMs: number;
}

/** The key as the directory listed it when the revocation was checked. */
export interface RevocableKey {
  kid: string;
  publicKey: string;
  status: 'active' | 'retired' | 'revoked';
}

export interface RecordedRevocation {
  /** The effective revocation time: the earliest any request asked for. */
  revokedAt: string;
  /** The reason published with it (that of the request that set the effective time). */
  reason: string;
  /** False when the key was already revoked at or before the time asked for: nothing changed. */
  changed: boolean;
}

export interface IssuerKeyRevocationReport extends RecordedRevocation {
  kid: string;
  publicKey: string;
  requestedBy: string;
  /** The time this request asked for. */
  requestedRevokedAt: string;
  /** The revoked key was signing (or staged to sign) when it was revoked: only with `force`. */
  signingKeyRevoked: boolean;
}

/** How far ahead of the receiver's clock a revocation time may be: clock skew between the caller and us. */
export const REVOCATION_TIME_SKEW_MS = 60_000;

/** Failure types of the revocation activities and workflow. */
export const ISSUER_KEY_FAILURES = {
  unknownKey: 'IssuerKeyUnknown',
  refused: 'IssuerKeyRevocationRefused',
} as const;

import { Schema, type Connection, type Model } from 'mongoose';
import type { KeyPurpose } from './ids';

/**
 * The run-time key settings: which key of each purpose is active, and every key a rotation ever recorded with its
 * public key (KMS keys) or its sealed secret (JWT keys). The environment's key identifiers are the defaults until a
 * rotation cuts over; after that these documents win, in every process, without a restart.
 */

/**
 * staged: verifies, does not sign yet; active: signs and verifies; previous: verifies during the grace period;
 * retired: no longer signs or verifies new work (issuer keys still verify historical records); cancelled: a
 * rotation staged it and was cancelled before cutover.
 */
export type KeyState = 'staged' | 'active' | 'previous' | 'retired' | 'cancelled';

export interface RotationKeyDocument {
  /** `<purpose>:<keyIdentifier>` */
  _id: string;
  purpose: KeyPurpose;
  keyIdentifier: string;
  state: KeyState;
  /** KMS keys: compressed SEC1 public key as the KMS reported it when recorded. */
  pubKeyHex: string | null;
  /** Funding keys: the P2PKH address of the key. */
  address: string | null;
  /** JWT keys only: the HMAC secret sealed with AES-256-GCM under a key derived from JWT_SECRET. */
  sealedSecret: string | null;
  /** Workflow id and run id of the rotation that last changed the key. */
  rotationId: string | null;
  activatedAt: Date | null;
  retiredAt: Date | null;
  updatedAt: Date;
}

export interface ActiveKeyDocument {
  /** The purpose. */
  _id: KeyPurpose;
  keyIdentifier: string;
  since: Date;
  rotationId: string;
}

const rotationKeySchema = new Schema<RotationKeyDocument>(
  {
    _id: { type: String, required: true },
    purpose: { type: String, required: true },
    keyIdentifier: { type: String, required: true },
    state: { type: String, required: true },
    pubKeyHex: { type: String, default: null },
    address: { type: String, default: null },
    sealedSecret: { type: String, default: null },
    rotationId: { type: String, default: null },
    activatedAt: { type: Date, default: null },
    retiredAt: { type: Date, default: null },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'rotation_keys', versionKey: false },
);
rotationKeySchema.index({ purpose: 1, state: 1 });

const activeKeySchema = new Schema<ActiveKeyDocument>(
  {
    _id: { type: String, required: true },
    keyIdentifier: { type: String, required: true },
    since: { type: Date, required: true },
    rotationId: { type: String, required: true },
  },
  { collection: 'active_keys', versionKey: false },
);

export function rotationKeyModel(connection: Connection): Model<RotationKeyDocument> {
  return (
    (connection.models.RotationKey as Model<RotationKeyDocument> | undefined) ??
    connection.model<RotationKeyDocument>('RotationKey', rotationKeySchema)
  );
}

export function activeKeyModel(connection: Connection): Model<ActiveKeyDocument> {
  return (
    (connection.models.ActiveKey as Model<ActiveKeyDocument> | undefined) ??
    connection.model<ActiveKeyDocument>('ActiveKey', activeKeySchema)
  );
}

export function rotationKeyId(purpose: KeyPurpose, keyIdentifier: string): string {
  return `${purpose}:${keyIdentifier}`;
}

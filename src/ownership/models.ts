import { Schema, type Connection, type Model } from 'mongoose';

/** A nonce, once used, for as long as a message carrying it could still be accepted (then a TTL index drops it). */
export interface UsedNonceDocument {
  /** `<purpose>:<nonce>` */
  _id: string;
  uid: string;
  usedAt: Date;
  expiresAt: Date;
}

const usedNonceSchema = new Schema<UsedNonceDocument>(
  {
    _id: { type: String, required: true },
    uid: { type: String, required: true },
    usedAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
  },
  { collection: 'used_nonces', versionKey: false },
);
usedNonceSchema.index({ expiresAt: 1 }, { expireAfterSeconds: 24 * 3600 });

/**
 * Which owner account acts for an address: bound when the address's key signs a bind message naming the account
 * (POST /v1/owner/addresses, under that account's SVD session); only that account's sessions may then act for the
 * address (docs/API.md, "Owner identity").
 */
export interface OwnerBindingDocument {
  /** The owner address. */
  _id: string;
  userId: string;
  boundAt: Date;
}

const ownerBindingSchema = new Schema<OwnerBindingDocument>(
  {
    _id: { type: String, required: true },
    userId: { type: String, required: true },
    boundAt: { type: Date, required: true },
  },
  { collection: 'owner_bindings', versionKey: false },
);
ownerBindingSchema.index({ userId: 1 });

function model<T>(connection: Connection, name: string, schema: Schema<T>): Model<T> {
  return (connection.models[name] as Model<T> | undefined) ?? connection.model<T>(name, schema);
}

export const usedNonceModel = (c: Connection) => model(c, 'UsedNonce', usedNonceSchema);
export const ownerBindingModel = (c: Connection) => model(c, 'OwnerBinding', ownerBindingSchema);

import { canonicalHash, wholeSecondsIso, type CanonicalValue } from '../anchoring/canonical';

/** What a client registers (POST /v1/patches), already validated. */
export interface RegistrationRequest {
  product: {
    uid_tag_id: string;
    name?: string;
    category?: string;
    sku?: string;
    serial_number?: string;
    material?: string;
    /** The brand that makes the product, shown on the public page. */
    brand?: string;
  };
  metadata?: { notes?: string; image?: string; patch_location?: string };
  auth: { owner: string };
  /** The NTAG 424 DNA tag sewn into the patch (7-byte UID, upper-case hex). */
  tag?: { type: 'ntag424'; uid: string };
}

/** The tag as the record commits to it: its UID and the master key version its keys were diversified from. */
export interface TagBinding {
  [key: string]: CanonicalValue | undefined;
  type: 'ntag424';
  uid: string;
  keyIdentifier: string;
  keyVersion: number;
}

/**
 * The record the issuer signs and the chain anchors. It holds only what never changes after registration: the
 * product, its metadata, the first owner and the registration time. The current owner lives in the patch head and
 * in transfer records, so a transfer never invalidates this signature: a signature over mutable fields would stop
 * verifying after the first transfer.
 */
export interface RegistrationRecord {
  [key: string]: CanonicalValue | undefined;
  v: 1;
  kind: 'patchproof.registration';
  uid: string;
  product: { [key: string]: string | undefined };
  metadata: { [key: string]: string | undefined };
  initialOwner: string;
  /** ISO 8601, whole seconds, UTC: the registration workflow's start time. */
  registeredAt: string;
  /** Present only for a patch with a SUN tag: the chain then proves which tag belongs to which patch. */
  tag?: TagBinding;
}

export function registrationRecord(request: RegistrationRequest, registeredAt: Date, tag?: TagBinding): RegistrationRecord {
  const { uid_tag_id: uid, ...product } = request.product;
  if (request.tag && (!tag || tag.uid !== request.tag.uid)) throw new Error(`the record of ${uid} needs its tag's key version`);
  return {
    ...(tag && { tag: { type: tag.type, uid: tag.uid, keyIdentifier: tag.keyIdentifier, keyVersion: tag.keyVersion } }),
    v: 1,
    kind: 'patchproof.registration',
    uid,
    product,
    metadata: { ...(request.metadata ?? {}) },
    initialOwner: request.auth.owner,
    registeredAt: wholeSecondsIso(registeredAt),
  };
}

/** sha256 of the record's canonical JSON: the digest the issuer signs and the leaf the anchor commits to. */
export function registrationRecordHash(record: RegistrationRecord): string {
  return canonicalHash(record);
}

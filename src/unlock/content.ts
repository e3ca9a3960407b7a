import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Schema, type Connection, type Model } from 'mongoose';

/**
 * Unlockable content: text a registration carries for the patch's owner only. It is encrypted before it is stored
 * (AES-256-GCM, key = HKDF-SHA256(UNLOCK_CONTENT_SECRET, salt uid, info below), the uid as associated data), never
 * enters a workflow's history, and is decrypted server-side only for an owner who signed a fresh challenge. The
 * server decrypts only what it stored: decrypting client-supplied ciphertext would make it a decryption oracle.
 */
const INFO = 'patchproof-unlock-content/v1';

export interface EncryptedContent {
  ivB64: string;
  ciphertextB64: string;
  tagB64: string;
}

function contentKey(secret: string, uid: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, uid, INFO, 32));
}

export function encryptContent(secret: string, uid: string, plaintext: string): EncryptedContent {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', contentKey(secret, uid), iv);
  cipher.setAAD(Buffer.from(uid));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { ivB64: iv.toString('base64'), ciphertextB64: ciphertext.toString('base64'), tagB64: cipher.getAuthTag().toString('base64') };
}

export function decryptContent(secret: string, uid: string, content: EncryptedContent): string {
  const decipher = createDecipheriv('aes-256-gcm', contentKey(secret, uid), Buffer.from(content.ivB64, 'base64'));
  decipher.setAAD(Buffer.from(uid));
  decipher.setAuthTag(Buffer.from(content.tagB64, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(content.ciphertextB64, 'base64')), decipher.final()]).toString('utf8');
}

/** A keyed digest of the content: lets a request hash cover it without exposing it to a guess. */
export function contentFingerprint(secret: string, uid: string, plaintext: string): string {
  return createHmac('sha256', contentKey(secret, uid)).update(plaintext, 'utf8').digest('hex');
}

/**
 * One document per registration request that carried content, keyed `<uid>:<requestHash>`: written before the
 * workflow starts, so the registration that wins the uid finds its own content, and a losing request's is never
 * served (it names a request hash no patch holds).
 */
export interface UnlockableContentDocument extends EncryptedContent {
  _id: string;
  uid: string;
  createdAt: Date;
}

const unlockableContentSchema = new Schema<UnlockableContentDocument>(
  {
    _id: { type: String, required: true },
    uid: { type: String, required: true },
    ivB64: { type: String, required: true },
    ciphertextB64: { type: String, required: true },
    tagB64: { type: String, required: true },
    createdAt: { type: Date, required: true },
  },
  { collection: 'unlockable_contents', versionKey: false },
);
unlockableContentSchema.index({ uid: 1 });

export function unlockableContentModel(connection: Connection): Model<UnlockableContentDocument> {
  return (
    (connection.models.UnlockableContent as Model<UnlockableContentDocument> | undefined) ??
    connection.model<UnlockableContentDocument>('UnlockableContent', unlockableContentSchema)
  );
}

export const unlockableContentId = (uid: string, requestHash: string) => `${uid}:${requestHash}`;

/** Stores a request's encrypted content once (a retry with the same request finds it). */
export async function storeUnlockableContent(
  mongo: Connection,
  secret: string,
  uid: string,
  requestHash: string,
  plaintext: string,
): Promise<void> {
  const encrypted = encryptContent(secret, uid, plaintext);
  await unlockableContentModel(mongo).updateOne(
    { _id: unlockableContentId(uid, requestHash) },
    { $setOnInsert: { uid, ...encrypted, createdAt: new Date() } },
    { upsert: true },
  );
}

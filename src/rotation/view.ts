import type { Connection } from 'mongoose';
import type { AppConfig } from '../config';
import type { KeyPurpose } from './ids';
import { activeKeyModel, rotationKeyModel } from './models';

export interface KeySettingsEntry {
  purpose: KeyPurpose;
  /** The key that signs now. */
  active: string;
  /** `environment` until a rotation of this purpose cut over. */
  source: 'environment' | 'rotation';
  /** Every key a rotation recorded for this purpose, oldest first. Public parts only: never a JWT secret. */
  keys: {
    keyIdentifier: string;
    state: string;
    pubKeyHex: string | null;
    address: string | null;
    activatedAt: string | null;
    retiredAt: string | null;
  }[];
}

/** What `rotate status` and GET /v1/admin/rotations show about the key settings, read straight from the store. */
export async function keySettingsView(mongo: Connection, config: AppConfig): Promise<KeySettingsEntry[]> {
  const [pointers, keys] = await Promise.all([
    activeKeyModel(mongo).find({}).lean(),
    rotationKeyModel(mongo).find({}, { sealedSecret: 0 }).lean(),
  ]);
  const defaults: Record<KeyPurpose, string> = {
    issuer: config.kms.issuerKeyIdentifier,
    funding: config.pool.fundingKeyIdentifier,
    svd: config.ownerAuth.svd.kmsKeyIdentifier,
    jwt: config.ownerAuth.jwt.activeKid,
  };
  return (Object.keys(defaults) as KeyPurpose[]).map((purpose) => {
    const pointer = pointers.find((p) => p._id === purpose);
    return {
      purpose,
      active: pointer?.keyIdentifier ?? defaults[purpose],
      source: pointer ? 'rotation' : 'environment',
      keys: keys
        .filter((k) => k.purpose === purpose)
        // Oldest first: by when the key became active; keys that never did (staged, cancelled) by their last change.
        .sort((a, b) => (a.activatedAt ?? a.updatedAt).getTime() - (b.activatedAt ?? b.updatedAt).getTime())
        .map((k) => ({
          keyIdentifier: k.keyIdentifier,
          state: k.state,
          pubKeyHex: k.pubKeyHex,
          address: k.address,
          activatedAt: k.activatedAt?.toISOString() ?? null,
          retiredAt: k.retiredAt?.toISOString() ?? null,
        })),
    };
  });
}

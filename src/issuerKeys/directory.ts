import { z } from 'zod';
import type { KmsClient } from '../kms/client';
import type { Keyring, KeyringSnapshot } from '../rotation/keyring';
import type { RotationKeyDocument } from '../rotation/models';

/**
 * The issuer key directory: every issuer key that ever signed (or is staged to sign) with its validity and
 * revocation, as `GET /.well-known/patchproof-keys.json` publishes it and as verification resolves keys through it.
 * Built from the key settings (src/rotation) and the revocations; nothing here does I/O but `loadKeyDirectory`.
 */

export const KEY_DIRECTORY_FORMAT = 'patchproof-keys/1';

const Iso = z.string().refine((value) => !Number.isNaN(Date.parse(value)), 'an ISO 8601 time');

export const IssuerKeyEntrySchema = z.object({
  kid: z.string().min(1).describe('The KMS key identifier the records name in `issuerSignature.keyIdentifier`.'),
  publicKey: z
    .string()
    .regex(/^0[23][0-9a-f]{64}$/, 'a compressed secp256k1 public key in lower-case hex')
    .describe('Compressed secp256k1 public key (hex): what `issuerSignature.pubKeyHex` must equal.'),
  status: z.enum(['active', 'retired', 'revoked']),
  validFrom: Iso.nullable().describe('When the key began to sign; null when it signed before the key settings recorded it.'),
  validUntil: Iso.nullable().describe('When it stopped signing: the cutover to its successor, or its revocation; null while active.'),
  revokedAt: Iso.nullable().describe('Signatures made at or after this time are not the issuer’s.'),
  revocationReason: z.string().nullable(),
});

export const IssuerKeyDirectorySchema = z.object({
  format: z.literal(KEY_DIRECTORY_FORMAT),
  keys: z.array(IssuerKeyEntrySchema),
});

export type IssuerKeyEntry = z.infer<typeof IssuerKeyEntrySchema>;
export type IssuerKeyDirectory = z.infer<typeof IssuerKeyDirectorySchema>;

/** The active issuer key as the process resolves it: the key settings' identifier and the KMS's public key for it. */
export interface ActiveIssuerKey {
  kid: string;
  pubKeyHex: string;
}

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : null);
const earliest = (...times: (string | null)[]) =>
  times.filter((t): t is string => t !== null).sort((a, b) => Date.parse(a) - Date.parse(b))[0] ?? null;

/**
 * The directory from a key settings snapshot. Keys a rotation staged and then cancelled never signed and are left
 * out; the active key is listed even before any rotation recorded it (the environment's `ISSUER_KEY_IDENTIFIER`).
 * A revocation applies to its public key under every identifier that names it.
 */
export function buildKeyDirectory(snapshot: Pick<KeyringSnapshot, 'keys' | 'revocations'>, active: ActiveIssuerKey): IssuerKeyDirectory {
  const recorded = snapshot.keys
    .filter((k): k is RotationKeyDocument & { pubKeyHex: string } => k.purpose === 'issuer' && k.state !== 'cancelled' && !!k.pubKeyHex)
    .sort((a, b) => (a.activatedAt ?? a.updatedAt).getTime() - (b.activatedAt ?? b.updatedAt).getTime());
  const activations = recorded.flatMap((k) => (k.activatedAt ? [k.activatedAt.getTime()] : []));
  const revocationOf = (pubKeyHex: string) => snapshot.revocations.find((r) => r._id === pubKeyHex);

  const entries: IssuerKeyEntry[] = recorded.map((key) => {
    const signing = key.state === 'active' || key.state === 'staged';
    // A key stops signing when its successor is activated (the cutover); that successor is the next activation.
    const since = key.activatedAt?.getTime() ?? -Infinity;
    const successor = activations.filter((t) => t > since).sort((a, b) => a - b)[0];
    const stoppedAt = signing ? null : successor !== undefined ? new Date(successor).toISOString() : iso(key.retiredAt);
    return entry(key.keyIdentifier, key.pubKeyHex, signing ? 'active' : 'retired', {
      validFrom: iso(key.activatedAt ?? (key.state === 'staged' ? key.updatedAt : null)),
      validUntil: stoppedAt,
    });
  });
  if (!recorded.some((k) => k.keyIdentifier === active.kid || k.pubKeyHex === active.pubKeyHex)) {
    entries.push(entry(active.kid, active.pubKeyHex, 'active', { validFrom: null, validUntil: null }));
  }
  // A revoked key that the key settings no longer list (none today) still has to be published as revoked.
  for (const revocation of snapshot.revocations) {
    if (!entries.some((e) => e.publicKey === revocation._id)) {
      entries.push(entry(revocation.kid, revocation._id, 'retired', { validFrom: null, validUntil: null }));
    }
  }
  return {
    format: KEY_DIRECTORY_FORMAT,
    keys: entries.map((e) => {
      const revocation = revocationOf(e.publicKey);
      if (!revocation) return e;
      const revokedAt = revocation.revokedAt.toISOString();
      return { ...e, status: 'revoked', validUntil: earliest(e.validUntil, revokedAt), revokedAt, revocationReason: revocation.reason };
    }),
  };
}

function entry(
  kid: string,
  publicKey: string,
  status: IssuerKeyEntry['status'],
  validity: Pick<IssuerKeyEntry, 'validFrom' | 'validUntil'>,
): IssuerKeyEntry {
  return { kid, publicKey, status, ...validity, revokedAt: null, revocationReason: null };
}

/** The directory as this process sees it now: key settings through the keyring's cache, the active key's public key from the KMS (cached). */
export async function loadKeyDirectory(deps: {
  keys: Pick<Keyring, 'snapshot' | 'activeKeyId'>;
  kms: Pick<KmsClient, 'publicKey'>;
}): Promise<IssuerKeyDirectory> {
  const kid = await deps.keys.activeKeyId('issuer');
  const [snapshot, { pubKeyHex }] = await Promise.all([deps.keys.snapshot(), deps.kms.publicKey(kid)]);
  return buildKeyDirectory(snapshot, { kid, pubKeyHex });
}

export interface KeyRevocation {
  kid: string;
  revokedAt: string;
  reason: string;
}

/** What a verifier needs from the directory: which public keys are the issuer's, and which of them are revoked since when. */
export interface IssuerKeyPolicy {
  accepted: ReadonlySet<string>;
  revoked: ReadonlyMap<string, KeyRevocation>;
}

export function issuerKeyPolicy(directory: IssuerKeyDirectory): IssuerKeyPolicy {
  const revoked = new Map<string, KeyRevocation>();
  for (const key of directory.keys) {
    if (key.status === 'revoked' && key.revokedAt)
      revoked.set(key.publicKey, { kid: key.kid, revokedAt: key.revokedAt, reason: key.revocationReason ?? '' });
  }
  return { accepted: new Set(directory.keys.map((k) => k.publicKey)), revoked };
}

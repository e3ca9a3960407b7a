import type { Connection } from 'mongoose';
import type { MerkleProof } from '../anchoring/merkle';
import type { KmsClient } from '../kms/client';
import type { Keyring } from '../rotation/keyring';
import type { WocClient } from '../woc/client';
import { patchModel, type PatchDocument } from './models';
import { checkProofBundle, issuerSignatureVerifies, PROOF_BUNDLE_FORMAT, type ProofBundle } from './proofBundle';

export type VerificationStatus = 'authentic' | 'pending' | 'not_found' | 'invalid';

export interface Verification {
  uid: string;
  status: VerificationStatus;
  reason?: string;
  record?: Record<string, unknown>;
  recordHash?: string;
  issuerSignature?: { valid: boolean; keyIdentifier: string; pubKeyHex: string; signatureDerHex: string };
  ownership?: { currentOwner: string; chain: { kind: 'registration'; owner: string; txid: string | null }[] };
  anchor?: MerkleProof & { txid: string; vout: number; blockHeight: number | null; confirmations: number };
}

export interface VerifyDeps {
  mongo: Connection;
  kms: KmsClient;
  woc: WocClient;
  network: 'main' | 'test';
  issuerKeyIdentifier: string;
  requiredConfirmations: number;
  /**
   * Key settings: the active issuer key, and every issuer public key a rotation recorded (records signed by an
   * older, even retired, issuer key keep verifying as historical records).
   */
  keys?: Pick<Keyring, 'activeKeyId' | 'issuerPublicKeys'>;
}

/** The self-contained proof of an anchored registration, or null while it has none. */
export function proofBundleOf(patch: PatchDocument, network: 'main' | 'test'): ProofBundle | null {
  if (patch.status !== 'anchored' || !patch.anchor || !patch.issuerSignature) return null;
  return {
    format: PROOF_BUNDLE_FORMAT,
    network,
    uid: patch._id,
    record: patch.record,
    recordHash: patch.recordHash,
    issuerSignature: patch.issuerSignature,
    anchor: { ...patch.anchor.proof, txid: patch.anchor.txid, vout: patch.anchor.vout, blockHeight: patch.anchor.blockHeight },
  };
}

/**
 * Verifies a patch from its parts rather than trusting a stored flag, with the same checks as an offline proof
 * bundle (proofBundle.ts) plus one: the signing key must be the issuer key the KMS holds.
 */
export async function verifyPatch(deps: VerifyDeps, uid: string): Promise<Verification> {
  const patch = await patchModel(deps.mongo).findById(uid).lean();
  if (!patch) return { uid, status: 'not_found' };
  const base: Verification = {
    uid,
    status: 'pending',
    record: patch.record,
    recordHash: patch.recordHash,
    ownership: {
      currentOwner: patch.owner,
      chain: [{ kind: 'registration', owner: String(patch.record.initialOwner), txid: patch.anchor?.txid ?? null }],
    },
  };
  if (patch.status === 'failed')
    return { ...base, status: 'invalid', reason: `registration failed: ${patch.lastError ?? 'unknown reason'}` };
  const bundle = proofBundleOf(patch, deps.network);
  if (!bundle) return { ...base, reason: `registration is ${patch.status}` };

  const issuer = await deps.kms.publicKey(deps.keys ? await deps.keys.activeKeyId('issuer') : deps.issuerKeyIdentifier);
  const issuerKeys = deps.keys ? await deps.keys.issuerPublicKeys() : new Set<string>();
  issuerKeys.add(issuer.pubKeyHex);
  const signedByIssuer = issuerKeys.has(bundle.issuerSignature.pubKeyHex);
  const verdict = await checkProofBundle(bundle, {
    woc: deps.woc,
    requiredConfirmations: deps.requiredConfirmations,
    expectedIssuerPubKeyHex: signedByIssuer ? bundle.issuerSignature.pubKeyHex : issuer.pubKeyHex,
  });
  base.issuerSignature = {
    ...bundle.issuerSignature,
    valid: signedByIssuer && issuerSignatureVerifies(bundle),
  };
  if (verdict.status === 'invalid') return { ...base, status: 'invalid', reason: verdict.reason };
  base.anchor = {
    ...bundle.anchor,
    confirmations: verdict.confirmations,
    blockHeight: verdict.status === 'authentic' ? verdict.blockHeight : bundle.anchor.blockHeight,
  };
  return verdict.status === 'authentic' ? { ...base, status: 'authentic' } : { ...base, status: 'pending', reason: verdict.reason };
}

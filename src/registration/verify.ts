import { PublicKey } from '@bsv/sdk';
import type { Connection } from 'mongoose';
import { parseAnchorScript } from '../anchoring/anchorScript';
import { canonicalHash } from '../anchoring/canonical';
import { verifyMerkleProof, type MerkleProof } from '../anchoring/merkle';
import { isLowS, parseDerSignature, verifyDigestSignature } from '../chain/ecdsa';
import type { KmsClient } from '../kms/client';
import type { WocClient } from '../woc/client';
import { patchModel } from './models';

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
  issuerKeyIdentifier: string;
  requiredConfirmations: number;
}

/**
 * Checks a patch from its parts rather than trusting a stored flag: the record still hashes to what was signed,
 * the issuer's key signed it (low-S), the Merkle proof leads to a root, and that root is in the anchor output on
 * chain with enough confirmations. Chain errors propagate: "cannot check now" is not "invalid".
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
  const invalid = (reason: string): Verification => ({ ...base, status: 'invalid', reason });

  if (canonicalHash(patch.record as never) !== patch.recordHash) return invalid('the stored record no longer hashes to the signed digest');
  if (patch.issuerSignature) {
    const issuer = await deps.kms.publicKey(deps.issuerKeyIdentifier);
    const signature = parseDerSignature(patch.issuerSignature.signatureDerHex);
    const valid =
      signature !== null &&
      isLowS(signature) &&
      patch.issuerSignature.pubKeyHex === issuer.pubKeyHex &&
      verifyDigestSignature([...Buffer.from(patch.recordHash, 'hex')], signature, PublicKey.fromString(issuer.pubKeyHex));
    base.issuerSignature = {
      valid,
      keyIdentifier: patch.issuerSignature.keyIdentifier,
      pubKeyHex: patch.issuerSignature.pubKeyHex,
      signatureDerHex: patch.issuerSignature.signatureDerHex,
    };
    if (!valid) return invalid('the issuer signature does not verify with the issuer key');
  }
  if (patch.status === 'failed') return invalid(`registration failed: ${patch.lastError ?? 'unknown reason'}`);
  if (patch.status !== 'anchored' || !patch.anchor) return { ...base, reason: `registration is ${patch.status}` };

  const { proof, txid, vout } = patch.anchor;
  if (!verifyMerkleProof(patch.recordHash, proof)) return invalid('the Merkle proof does not lead from the record to its root');
  const tx = await deps.woc.getTx(txid);
  if (!tx) return { ...base, reason: `anchor transaction ${txid} is not known to the chain yet` };
  const output = tx.outputs.find((o) => o.vout === vout);
  const anchored = output ? parseAnchorScript(output.scriptHex) : null;
  if (!anchored || anchored.root !== proof.root || anchored.count !== proof.count) {
    return invalid(`output ${vout} of ${txid} does not commit to the proof's root`);
  }
  base.anchor = { ...proof, txid, vout, blockHeight: tx.blockHeight ?? null, confirmations: tx.confirmations };
  if (tx.confirmations < deps.requiredConfirmations) {
    return { ...base, reason: `anchor has ${tx.confirmations} of ${deps.requiredConfirmations} confirmations` };
  }
  return { ...base, status: 'authentic' };
}

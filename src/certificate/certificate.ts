import type { Verification, VerificationStatus } from '../registration/verify';

/** The product fields a certificate shows, in this order, with their labels. */
export const CERTIFICATE_PRODUCT_FIELDS = [
  ['name', 'Product'],
  ['category', 'Category'],
  ['sku', 'SKU'],
  ['serial_number', 'Serial number'],
  ['material', 'Material'],
] as const;

/**
 * What a certificate states. It is built from a verification (verifyPatch) and nothing else: no request input
 * reaches it but the uid, which the verification echoes. A verdict other than `authentic` is carried through so the
 * renderings can mark it.
 */
export interface Certificate {
  uid: string;
  status: Exclude<VerificationStatus, 'not_found'>;
  /** Why the patch is not authentic (pending, invalid or revoked-key); absent when it is. */
  reason?: string;
  product: { field: string; label: string; value: string }[];
  registeredAt?: string;
  currentOwner?: string;
  /** The registration plus every anchored transfer. */
  ownershipChainLength: number;
  anchor?: { txid: string; blockHeight: number | null; confirmations: number };
  issuer?: { keyIdentifier: string; pubKeyHex: string; signatureValid: boolean };
}

const stringOf = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value : undefined);

/** The certificate of a verification, or null for a uid that is not registered. */
export function certificateOf(verification: Verification): Certificate | null {
  if (verification.status === 'not_found') return null;
  const product = (verification.record?.product ?? {}) as Record<string, unknown>;
  const registeredAt = stringOf(verification.record?.registeredAt);
  return {
    uid: verification.uid,
    status: verification.status,
    ...(verification.reason && { reason: verification.reason }),
    product: CERTIFICATE_PRODUCT_FIELDS.flatMap(([field, label]) => {
      const value = stringOf(product[field]);
      return value === undefined ? [] : [{ field, label, value }];
    }),
    ...(registeredAt && { registeredAt }),
    ...(verification.ownership && { currentOwner: verification.ownership.currentOwner }),
    ownershipChainLength: verification.ownership?.chain.length ?? 0,
    ...(verification.anchor && {
      anchor: {
        txid: verification.anchor.txid,
        blockHeight: verification.anchor.blockHeight,
        confirmations: verification.anchor.confirmations,
      },
    }),
    ...(verification.issuerSignature && {
      issuer: {
        keyIdentifier: verification.issuerSignature.keyIdentifier,
        pubKeyHex: verification.issuerSignature.pubKeyHex,
        signatureValid: verification.issuerSignature.valid,
      },
    }),
  };
}

/** The headline of a certificate: what a reader must see first. */
export function certificateHeadline(certificate: Certificate): string {
  switch (certificate.status) {
    case 'authentic':
      return 'Certificate of authenticity';
    case 'pending':
      return 'NOT YET VERIFIED: registration pending';
    case 'invalid':
      return 'NOT AUTHENTIC: verification failed';
    case 'revoked-key':
      return 'NOT AUTHENTIC: signed by a revoked issuer key';
  }
}

/** The rows every rendering shows, as label and text, in order. */
export function certificateRows(certificate: Certificate): { key: string; label: string; value: string }[] {
  const rows: { key: string; label: string; value: string }[] = [
    { key: 'status', label: 'Verification status', value: certificate.status },
    ...(certificate.reason ? [{ key: 'reason', label: 'Reason', value: certificate.reason }] : []),
    { key: 'uid', label: 'Patch uid', value: certificate.uid },
    ...certificate.product.map((p) => ({ key: `product.${p.field}`, label: p.label, value: p.value })),
    ...(certificate.registeredAt ? [{ key: 'registeredAt', label: 'Registered at', value: certificate.registeredAt }] : []),
    ...(certificate.currentOwner ? [{ key: 'currentOwner', label: 'Current owner', value: certificate.currentOwner }] : []),
    { key: 'ownershipChainLength', label: 'Ownership records', value: String(certificate.ownershipChainLength) },
  ];
  if (certificate.anchor) {
    rows.push(
      { key: 'anchor.txid', label: 'Anchor transaction', value: certificate.anchor.txid },
      {
        key: 'anchor.blockHeight',
        label: 'Block height',
        value: certificate.anchor.blockHeight === null ? 'not mined' : String(certificate.anchor.blockHeight),
      },
      { key: 'anchor.confirmations', label: 'Confirmations', value: String(certificate.anchor.confirmations) },
    );
  }
  if (certificate.issuer) {
    rows.push(
      { key: 'issuer.keyIdentifier', label: 'Issuer key', value: certificate.issuer.keyIdentifier },
      { key: 'issuer.pubKeyHex', label: 'Issuer public key', value: certificate.issuer.pubKeyHex },
      { key: 'issuer.signatureValid', label: 'Issuer signature', value: certificate.issuer.signatureValid ? 'valid' : 'INVALID' },
    );
  }
  return rows;
}

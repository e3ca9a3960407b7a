import type { Verification } from '../registration/verify';
import type { PageMessages } from './messages';

/**
 * Every verdict a reader of the page can meet. `replayed_tap` and `invalid_tag` come from a tap of the patch's NFC
 * tag (its SUN/SDM URL), which overrides what the record alone says: a copied or forged tag link must not show a
 * genuine record as authentic.
 */
export const PATCH_OUTCOMES = ['authentic', 'anchoring', 'not_found', 'replayed_tap', 'invalid_tag', 'revoked_key', 'tampered'] as const;
export type PatchOutcome = (typeof PATCH_OUTCOMES)[number];

/** What a tap route found about the tag itself, before the record is looked at. */
export type TapVerdict = 'fresh' | 'replayed' | 'invalid-tag';

/** The product fields shown under the name, in this order. */
export const PRODUCT_DETAIL_FIELDS = ['category', 'sku', 'serial_number', 'material'] as const;
export type ProductDetailField = (typeof PRODUCT_DETAIL_FIELDS)[number];

export interface HistoryEntry {
  kind: 'registration' | 'transfer';
  seq: number;
  owner: string;
  /** When the record says it happened (ISO 8601). */
  at?: string;
  txid: string | null;
  confirmations?: number;
}

/**
 * What the public page and the certificate PDF show about one patch, built from a verification only (and, for a
 * tap, the tap's verdict): the two renderings read this and nothing else, so they cannot disagree.
 */
export interface PatchView {
  uid: string;
  outcome: PatchOutcome;
  /** Why the verdict is not authentic, as verification states it (technical, English). */
  reason?: string;
  product: {
    name?: string;
    brand?: string;
    details: { field: ProductDetailField; value: string }[];
    /** Same-origin address of the product image proxy, when the record names an image the proxy may fetch. */
    imagePath?: string;
  };
  registeredAt?: string;
  currentOwner?: string;
  history: HistoryEntry[];
  pendingTransfer: boolean;
  anchor?: { txid: string; blockHeight: number | null; confirmations: number };
  issuer?: { keyIdentifier: string; pubKeyHex: string; signatureValid: boolean };
  paths: { page: string; verify: string; certificatePdf?: string; proof?: string };
}

export interface PatchViewOptions {
  tap?: TapVerdict;
  /** True when the product image proxy would fetch this URL (src/patchPage/imageProxy.ts). */
  imageAllowed?: (url: string) => boolean;
}

const OUTCOME_OF_STATUS: Record<Verification['status'], PatchOutcome> = {
  authentic: 'authentic',
  pending: 'anchoring',
  not_found: 'not_found',
  invalid: 'tampered',
  'revoked-key': 'revoked_key',
};

export function outcomeOf(verification: Pick<Verification, 'status'>, tap?: TapVerdict): PatchOutcome {
  if (tap === 'replayed') return 'replayed_tap';
  if (tap === 'invalid-tag') return 'invalid_tag';
  return OUTCOME_OF_STATUS[verification.status];
}

const text = (value: unknown): string | undefined => (typeof value === 'string' && value.trim().length > 0 ? value : undefined);
const objectAt = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

export const patchPagePath = (uid: string) => `/p/${encodeURIComponent(uid)}`;

export function patchViewOf(verification: Verification, options: PatchViewOptions = {}): PatchView {
  const uid = verification.uid;
  const base = `/v1/patches/${encodeURIComponent(uid)}`;
  const outcome = outcomeOf(verification, options.tap);
  const record = objectAt(verification.record);
  const product = objectAt(record.product);
  const image = text(objectAt(record.metadata).image);
  const registeredAt = text(record.registeredAt);
  // A proof bundle exists once the registration is anchored; a certificate once the patch is registered.
  const anchored = verification.status === 'authentic' || verification.status === 'revoked-key';
  return {
    uid,
    outcome,
    ...(verification.reason && { reason: verification.reason }),
    product: {
      ...(text(product.name) && { name: text(product.name) }),
      ...(text(product.brand) && { brand: text(product.brand) }),
      details: PRODUCT_DETAIL_FIELDS.flatMap((field) => {
        const value = text(product[field]);
        return value === undefined ? [] : [{ field, value }];
      }),
      ...(image && options.imageAllowed?.(image) && { imagePath: `${base}/image` }),
    },
    ...(registeredAt && { registeredAt }),
    ...(verification.ownership && { currentOwner: verification.ownership.currentOwner }),
    history: (verification.ownership?.chain ?? []).map((link) => {
      const at = link.kind === 'registration' ? registeredAt : text(objectAt(link.record).transferredAt);
      const confirmations = link.seq === 0 ? verification.anchor?.confirmations : link.anchor?.confirmations;
      return {
        kind: link.kind,
        seq: link.seq,
        owner: link.owner,
        ...(at && { at }),
        txid: link.txid,
        ...(confirmations !== undefined && { confirmations }),
      };
    }),
    pendingTransfer: Boolean(verification.ownership?.pendingTransfer),
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
    paths: {
      page: patchPagePath(uid),
      verify: `${base}/verify`,
      ...(verification.status !== 'not_found' && { certificatePdf: `${base}/certificate?format=pdf` }),
      ...(anchored && { proof: `${base}/proof` }),
    },
  };
}

/** An address shortened for a phone screen: enough of both ends to compare with a wallet. */
export function truncateMiddle(value: string, keep = 6): string {
  return value.length <= keep * 2 + 1 ? value : `${value.slice(0, keep)}…${value.slice(-keep)}`;
}

/** The explorer link of a tx from the configured template, or null when no explorer is configured. */
export function explorerUrl(template: string | null, txid: string): string | null {
  return template && /^[0-9a-f]{64}$/i.test(txid) ? template.replaceAll('{txid}', txid) : null;
}

/**
 * The facts both renderings list, in order, as label and value: one place decides what the page and the PDF state.
 */
export function patchFacts(
  view: PatchView,
  messages: Pick<PageMessages, 'fields' | 'brand' | 'product'>,
  formatDate: (iso: string) => string,
): { key: string; label: string; value: string }[] {
  return [
    ...(view.product.name ? [{ key: 'product.name', label: messages.product, value: view.product.name }] : []),
    ...(view.product.brand ? [{ key: 'product.brand', label: messages.brand, value: view.product.brand }] : []),
    { key: 'uid', label: messages.fields.uid, value: view.uid },
    ...view.product.details.map((d) => ({ key: `product.${d.field}`, label: messages.fields[d.field], value: d.value })),
    ...(view.registeredAt ? [{ key: 'registeredAt', label: messages.fields.registeredAt, value: formatDate(view.registeredAt) }] : []),
  ];
}

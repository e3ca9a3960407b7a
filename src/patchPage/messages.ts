import type { PatchOutcome } from './view';

/** The languages the page is written in; the first is the default when Accept-Language names none of them. */
export const PAGE_LANGUAGES = ['en', 'fr'] as const;
export type PageLanguage = (typeof PAGE_LANGUAGES)[number];

export interface PageMessages {
  /** Per outcome: the banner's headline and one sentence of what it means for the buyer and what to do. */
  verdicts: Record<PatchOutcome, { title: string; meaning: string }>;
  product: string;
  productPhoto: (name: string | undefined) => string;
  brand: string;
  fields: Record<'uid' | 'category' | 'sku' | 'serial_number' | 'material' | 'registeredAt' | 'currentOwner', string>;
  history: string;
  registered: string;
  transferred: string;
  pendingTransfer: string;
  noHistory: string;
  proof: string;
  anchorTx: string;
  blockHeight: string;
  notMined: string;
  confirmations: string;
  issuerKey: string;
  issuerSignature: string;
  valid: string;
  invalid: string;
  details: string;
  downloadProof: string;
  /** The note under the proof download, around the command that checks it: [before, after]. */
  offlineNote: [string, string];
  certificatePdf: string;
  onExplorer: string;
  footer: string;
  skipToVerdict: string;
}

const en: PageMessages = {
  verdicts: {
    authentic: {
      title: 'Authentic',
      meaning:
        'This patch was registered by its issuer and its record is anchored on the BSV blockchain: check that the item in your hands matches the product below.',
    },
    anchoring: {
      title: 'Registered, still anchoring',
      meaning:
        'This patch was registered moments ago and its record is not yet confirmed on the blockchain: check again in a few minutes before you rely on it.',
    },
    not_found: {
      title: 'Unknown patch',
      meaning:
        'No patch with this code is registered, so nothing backs this item’s claim: do not buy on its strength and ask the seller or the brand.',
    },
    replayed_tap: {
      title: 'Copied tag link',
      meaning:
        'This link was already used by an earlier tap, so it may have been copied from the real tag: tap the patch itself with your phone again, and do not buy if this message returns.',
    },
    invalid_tag: {
      title: 'Tag not recognised',
      meaning:
        'The tag’s code does not match the tag registered for this patch, so the tag may be counterfeit: do not buy, and report it to the brand.',
    },
    revoked_key: {
      title: 'Not authentic: withdrawn signing key',
      meaning:
        'This record was signed with an issuer key that has since been withdrawn as unsafe, so it proves nothing: do not buy, and ask the brand.',
    },
    tampered: {
      title: 'Not authentic: record fails verification',
      meaning:
        'This patch’s record no longer matches what was signed and anchored on the blockchain: do not buy, and report it to the brand.',
    },
  },
  product: 'Product',
  productPhoto: (name) => (name ? `Photo of ${name}` : 'Product photo'),
  brand: 'Brand',
  fields: {
    uid: 'Patch code',
    category: 'Category',
    sku: 'SKU',
    serial_number: 'Serial number',
    material: 'Material',
    registeredAt: 'Registered',
    currentOwner: 'Current owner',
  },
  history: 'Ownership history',
  registered: 'Registered to',
  transferred: 'Transferred to',
  pendingTransfer: 'A transfer is being anchored.',
  noHistory: 'No ownership record to show.',
  proof: 'Blockchain proof',
  anchorTx: 'Anchor transaction',
  blockHeight: 'Block',
  notMined: 'not yet in a block',
  confirmations: 'Confirmations',
  issuerKey: 'Issuer key',
  issuerSignature: 'Issuer signature',
  valid: 'valid',
  invalid: 'INVALID',
  details: 'Technical detail',
  downloadProof: 'Download proof',
  offlineNote: ['The proof file checks offline with', 'and the issuer’s public key, without trusting this site.'],
  certificatePdf: 'Certificate (PDF)',
  onExplorer: 'view on a block explorer',
  footer: 'Verified by PatchProof from the issuer-signed record and its anchor on the BSV blockchain.',
  skipToVerdict: 'Skip to the verdict',
};

const fr: PageMessages = {
  verdicts: {
    authentic: {
      title: 'Authentique',
      meaning:
        'Ce patch a été enregistré par son émetteur et son registre est ancré sur la blockchain BSV : vérifiez que l’article en main correspond au produit ci-dessous.',
    },
    anchoring: {
      title: 'Enregistré, ancrage en cours',
      meaning:
        'Ce patch vient d’être enregistré et son registre n’est pas encore confirmé sur la blockchain : revenez dans quelques minutes avant de vous y fier.',
    },
    not_found: {
      title: 'Patch inconnu',
      meaning:
        'Aucun patch n’est enregistré sous ce code, rien ne garantit donc cet article : n’achetez pas sur cette base et interrogez le vendeur ou la marque.',
    },
    replayed_tap: {
      title: 'Lien de puce copié',
      meaning:
        'Ce lien a déjà servi lors d’une lecture précédente et a pu être copié depuis la vraie puce : approchez à nouveau votre téléphone du patch, et n’achetez pas si ce message revient.',
    },
    invalid_tag: {
      title: 'Puce non reconnue',
      meaning:
        'Le code de la puce ne correspond pas à celle enregistrée pour ce patch, elle est peut-être contrefaite : n’achetez pas et signalez-le à la marque.',
    },
    revoked_key: {
      title: 'Non authentique : clé de signature retirée',
      meaning:
        'Ce registre a été signé avec une clé de l’émetteur retirée depuis pour raison de sécurité, il ne prouve donc rien : n’achetez pas et contactez la marque.',
    },
    tampered: {
      title: 'Non authentique : la vérification échoue',
      meaning:
        'Le registre de ce patch ne correspond plus à ce qui a été signé et ancré sur la blockchain : n’achetez pas et signalez-le à la marque.',
    },
  },
  product: 'Produit',
  productPhoto: (name) => (name ? `Photo de ${name}` : 'Photo du produit'),
  brand: 'Marque',
  fields: {
    uid: 'Code du patch',
    category: 'Catégorie',
    sku: 'Référence',
    serial_number: 'Numéro de série',
    material: 'Matière',
    registeredAt: 'Enregistré le',
    currentOwner: 'Propriétaire actuel',
  },
  history: 'Historique de propriété',
  registered: 'Enregistré au nom de',
  transferred: 'Transféré à',
  pendingTransfer: 'Un transfert est en cours d’ancrage.',
  noHistory: 'Aucun registre de propriété à afficher.',
  proof: 'Preuve sur la blockchain',
  anchorTx: 'Transaction d’ancrage',
  blockHeight: 'Bloc',
  notMined: 'pas encore dans un bloc',
  confirmations: 'Confirmations',
  issuerKey: 'Clé de l’émetteur',
  issuerSignature: 'Signature de l’émetteur',
  valid: 'valide',
  invalid: 'INVALIDE',
  details: 'Détail technique',
  downloadProof: 'Télécharger la preuve',
  offlineNote: ['Le fichier de preuve se vérifie hors ligne avec', 'et la clé publique de l’émetteur, sans faire confiance à ce site.'],
  certificatePdf: 'Certificat (PDF)',
  onExplorer: 'voir dans un explorateur de blocs',
  footer: 'Vérifié par PatchProof à partir du registre signé par l’émetteur et de son ancrage sur la blockchain BSV.',
  skipToVerdict: 'Aller au verdict',
};

export const PAGE_MESSAGES: Record<PageLanguage, PageMessages> = { en, fr };

/** Dates as a reader of the language writes them, always in UTC (the record's time zone), with the zone named. */
export function formatDate(iso: string, language: PageLanguage): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${new Intl.DateTimeFormat(language, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(date)} UTC`;
}

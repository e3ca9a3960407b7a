import QRCode from 'qrcode';

/** Sizes a brand may ask of the PNG, in pixels a side; the SVG scales to any size. */
export const QR_PNG_SIZE = { min: 128, max: 2048, default: 512 } as const;

// Level M survives about 15 % damage, enough for a printed label that rubs; a quiet zone of 4 modules is the
// standard's minimum for reliable scanning.
const QR_OPTIONS = { errorCorrectionLevel: 'M', margin: 4 } as const;

/** A QR code of `url` as SVG (the `qrcode` package; black modules on white). */
export function qrSvg(url: string): Promise<string> {
  return QRCode.toString(url, { ...QR_OPTIONS, type: 'svg' });
}

/** The same QR code as a PNG `size` pixels wide. */
export function qrPng(url: string, size: number = QR_PNG_SIZE.default): Promise<Buffer> {
  return QRCode.toBuffer(url, { ...QR_OPTIONS, type: 'png', width: size });
}

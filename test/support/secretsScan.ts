import { PrivateKey } from '@bsv/sdk';
import * as libsecp256k1 from 'tiny-secp256k1';
import { isSecretField, REDACTED } from '../../src/logging/redact';

/**
 * Looks for secrets and personal data in text the test run left behind: log files, the stdout and stderr of the
 * processes the tests started, and decoded workflow histories. Pure: the caller reads the sources
 * (test/support/globalTeardown.ts) and fails the run on any finding.
 *
 * A finding is a match that is validated, not merely shaped like a secret: a WIF must pass its checksum, a JWT's
 * header must decode to JSON naming an algorithm, a 64-hex private key counts when its public key appears in the
 * same text the run produced, an API key must have the full `pp_<mode>_<id>_<secret>` format. Literal secrets are the
 * values the test stack itself configured (API_KEY, JWT_SECRET, SMTP_PASS, …), registered as the tests build their
 * environments.
 */

export type FindingKind =
  'literal-secret' | 'api-key' | 'jwt' | 'pem-private-key' | 'wif' | 'private-key-hex' | 'email-code' | 'secret-field' | 'email-address';

export interface ScanSource {
  /** Where the text came from: a file path, or `namespace/workflowId/runId`. */
  where: string;
  text: string;
}

export interface Finding {
  kind: FindingKind;
  where: string;
  /** 1-based line within the source's text. */
  line: number;
  /** The match with its middle masked, so the report itself does not repeat the secret. */
  excerpt: string;
  /** For literal secrets: the name it was configured under (JWT_SECRET, …). */
  name?: string;
}

export interface ScanOptions {
  /** Secret values the run configured, by name. Values shorter than 8 characters are ignored (too common). */
  literals?: Record<string, string>;
  /**
   * Private keys (64 hex) the run created, such as owners' SVD master keys: their public keys join the ones found in
   * the text, so the raw-key check finds them even where their public key appears nowhere.
   */
  privateKeys?: string[];
}

const MIN_LITERAL_LENGTH = 8;

/** Shows the first and last few characters of a match: enough to find it, not enough to use it. */
export function mask(value: string): string {
  if (value.length <= 8) return `${value.slice(0, 1)}…(${value.length})`;
  return `${value.slice(0, 4)}…${value.slice(-2)} (${value.length} chars)`;
}

const API_KEY = /\bpp_(?:live|test)_[0-9a-f]{16}_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;
const PEM = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/g;
const WIF_CANDIDATE = /(?<![1-9A-HJ-NP-Za-km-z])[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}(?![1-9A-HJ-NP-Za-km-z])/g;
const HEX64 = /(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])/g;
const COMPRESSED_PUBKEY = /(?<![0-9a-fA-F])0[23][0-9a-fA-F]{64}(?![0-9a-fA-F])/g;
/** A six-digit code next to a field or phrase that names it: `"code":"123456"`, `code=123456`, `code is 123456`. */
const EMAIL_CODE = /\b(?:code|otp|verification code|verificationCode|verifyCode|emailCode)\b["']?\s*(?:[:=]|is)?\s*["']?(\d{6})(?!\d)/gi;
/** A JSON string field: `"name":"value"` (escaped quotes inside the value allowed). */
const JSON_STRING_FIELD = /"([A-Za-z][A-Za-z0-9_-]{0,60})"\s*:\s*"((?:[^"\\]|\\.)*)"/g;
const EMAIL = /(?<![A-Za-z0-9._%+*-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g;

/**
 * Names the logger masks as a precaution although their values are public: the owner's master public key (PMC) and
 * the SVD challenge M are sent in the clear by design (docs/AUTH.md). Their presence in a history is no leak.
 */
const PUBLIC_PROTOCOL_FIELDS = new Set(['pmc', 'pmchex', 'm', 'mhex', 'challenge', 'challengehex']);

function isSecretValuedField(field: string): boolean {
  return isSecretField(field) && !PUBLIC_PROTOCOL_FIELDS.has(field.toLowerCase().replace(/[_-]/g, ''));
}

/** Values a secret-named field may legitimately hold: already redacted, or empty. */
function isHarmlessSecretFieldValue(value: string): boolean {
  return value === '' || value === REDACTED || /^\[\d+ bytes\]$/.test(value) || value === '[Circular]' || value === '[Truncated]';
}

function isWif(candidate: string): boolean {
  try {
    PrivateKey.fromWif(candidate);
    return true;
  } catch {
    return false;
  }
}

function isJwt(candidate: string): boolean {
  const header = candidate.split('.')[0] ?? '';
  try {
    const parsed = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown };
    return typeof parsed.alg === 'string';
  } catch {
    return false;
  }
}

function publicKeyOf(hex: string): string | undefined {
  const scalar = Buffer.from(hex, 'hex');
  if (!libsecp256k1.isPrivate(scalar)) return undefined;
  const point = libsecp256k1.pointFromScalar(scalar, true);
  return point ? Buffer.from(point).toString('hex') : undefined;
}

function lineOf(text: string, index: number, lineStarts: number[]): number {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((lineStarts[mid] ?? 0) <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

function lineStartsOf(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/**
 * Every finding in `sources`. Public keys are gathered across all sources first: a 64-hex value is a leaked private
 * key when its public key is anywhere in what the run produced (a registered PMC, a funding or issuer key).
 */
export function scanForSecrets(sources: ScanSource[], options: ScanOptions = {}): Finding[] {
  const literals = Object.entries(options.literals ?? {}).filter(([, value]) => value.length >= MIN_LITERAL_LENGTH);
  const publicKeys = new Set<string>();
  for (const { text } of sources) for (const m of text.matchAll(COMPRESSED_PUBKEY)) publicKeys.add(m[0].toLowerCase());
  for (const hex of options.privateKeys ?? []) {
    const pub = publicKeyOf(hex.toLowerCase());
    if (pub) publicKeys.add(pub);
  }
  const privateByHex = new Map<string, boolean>();
  const isLeakedPrivateKey = (hex: string): boolean => {
    const key = hex.toLowerCase();
    let known = privateByHex.get(key);
    if (known === undefined) {
      const pub = publicKeys.size > 0 ? publicKeyOf(key) : undefined;
      known = pub !== undefined && publicKeys.has(pub);
      privateByHex.set(key, known);
    }
    return known;
  };

  const findings: Finding[] = [];
  for (const { where, text } of sources) {
    let starts: number[] | undefined;
    const add = (kind: FindingKind, index: number, match: string, name?: string) => {
      starts ??= lineStartsOf(text);
      findings.push({ kind, where, line: lineOf(text, index, starts), excerpt: mask(match), ...(name && { name }) });
    };
    for (const [name, value] of literals) {
      for (let i = text.indexOf(value); i !== -1; i = text.indexOf(value, i + value.length)) add('literal-secret', i, value, name);
    }
    for (const m of text.matchAll(API_KEY)) add('api-key', m.index, m[0]);
    for (const m of text.matchAll(JWT)) if (isJwt(m[0])) add('jwt', m.index, m[0]);
    for (const m of text.matchAll(PEM)) add('pem-private-key', m.index, m[0]);
    for (const m of text.matchAll(WIF_CANDIDATE)) if (isWif(m[0])) add('wif', m.index, m[0]);
    if (publicKeys.size > 0) for (const m of text.matchAll(HEX64)) if (isLeakedPrivateKey(m[0])) add('private-key-hex', m.index, m[0]);
    for (const m of text.matchAll(EMAIL_CODE)) add('email-code', m.index, m[0]);
    for (const m of text.matchAll(JSON_STRING_FIELD)) {
      const [whole, field = '', value = ''] = m;
      if (isSecretValuedField(field) && !isHarmlessSecretFieldValue(value) && !isErrorCodeValue(field, value))
        add('secret-field', m.index, whole);
    }
    for (const m of text.matchAll(EMAIL)) if (!isMessageId(text, m.index, m[0])) add('email-address', m.index, m[0]);
  }
  return findings;
}

/**
 * An RFC 5322 Message-ID such as nodemailer generates (`<uuid@sender-domain>`): it has an address's shape but names a
 * message, not a person. It is told apart by its angle brackets and its random (UUID or long hex) local part.
 */
function isMessageId(text: string, index: number, match: string): boolean {
  const local = match.slice(0, match.indexOf('@'));
  return text[index - 1] === '<' && text[index + match.length] === '>' && /^[0-9a-f]{8,}(?:-[0-9a-f]{4,})*$/i.test(local);
}

/** `"code":"NOT_FOUND"`: error envelopes name the error in a `code` field (docs/ERRORS.md); digits are what is secret. */
function isErrorCodeValue(field: string, value: string): boolean {
  return /code$/i.test(field) && /^[A-Z]{2,}(_[A-Z0-9]+)*$/.test(value);
}

/** One line per finding, grouped by where it was found, for the failure message. */
export function describeFindings(findings: Finding[], limit = 200): string {
  const lines = findings.slice(0, limit).map((f) => `  - ${f.kind}${f.name ? ` (${f.name})` : ''} at ${f.where}:${f.line}: ${f.excerpt}`);
  if (findings.length > limit) lines.push(`  … and ${findings.length - limit} more`);
  return lines.join('\n');
}

/**
 * Every string, number and byte payload (as UTF-8) of a workflow history, one per line: JSON payloads are bytes in
 * the history, so inputs, results, memo, search attributes, signals and failures become readable text.
 */
export function decodedText(history: unknown): string {
  const decoded: string[] = [];
  const walk = (value: unknown): void => {
    if (value instanceof Uint8Array) decoded.push(Buffer.from(value).toString('utf8'));
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') decoded.push(String(value));
  };
  walk(history);
  return decoded.join('\n');
}

/**
 * Redaction applied to every log line in every process (API, workers, CLI, Temporal runtime logs).
 * Two layers: fields whose *name* marks them secret are replaced whole; string values anywhere are scrubbed of
 * patterns that are secret whatever field they sit in (JWTs, bearer credentials, private keys, email addresses).
 */

export const REDACTED = '[REDACTED]';

/** Field names (compared case-insensitively, ignoring `_` and `-`) whose values are never logged. */
const SECRET_FIELD_NAMES = new Set(
  [
    'apikey',
    'xapikey',
    'authorization',
    'proxyauthorization',
    'cookie',
    'setcookie',
    'token',
    'accesstoken',
    'refreshtoken',
    'idtoken',
    'jwt',
    'secret',
    'clientsecret',
    'jwtsecret',
    'password',
    'pass',
    'passwd',
    'smtppass',
    'smtppassword',
    'redispassword',
    'privatekey',
    'privkey',
    'wif',
    'xprv',
    'seed',
    'mnemonic',
    'pmchex',
    'pmc',
    'm',
    'challenge',
    'challengehex',
    'code',
    'otp',
    'verificationcode',
    'codehash',
    'sharedsecret',
    'svdsecret',
    'kmsapikey',
    'temporalapikey',
  ].map(normaliseKey),
);

/** Any field whose name starts with `svd` carries SVD material (secrets, proofs). */
const SECRET_FIELD_PREFIXES = ['svd'];

function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, '');
}

export function isSecretField(key: string): boolean {
  const k = normaliseKey(key);
  return SECRET_FIELD_NAMES.has(k) || SECRET_FIELD_PREFIXES.some((p) => k.startsWith(p));
}

const VALUE_PATTERNS: { pattern: RegExp; replace: (match: string, ...groups: string[]) => string }[] = [
  // JSON Web Tokens.
  { pattern: /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, replace: () => REDACTED },
  // Bearer / Basic credentials in header-like text.
  { pattern: /\b(Bearer|Basic|ApiKey)\s+[A-Za-z0-9._~+/=-]{8,}/gi, replace: (_m, scheme) => `${scheme} ${REDACTED}` },
  // PEM private keys.
  { pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, replace: () => REDACTED },
  // Extended private keys and WIF-encoded private keys (base58, 51–52 chars, mainnet/testnet prefixes).
  { pattern: /\b[xt]prv[1-9A-HJ-NP-Za-km-z]{100,}\b/g, replace: () => REDACTED },
  { pattern: /\b[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}\b/g, replace: () => REDACTED },
  // Passwords inside connection strings: scheme://user:password@host.
  { pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^:@/\s]*):([^@/\s]+)@/gi, replace: (_m, prefix) => `${prefix}:${REDACTED}@` },
  // Email addresses: keep the first character and the domain so support can still correlate.
  {
    pattern: /\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b/g,
    replace: (_m, first, domain) => `${first}***@${domain}`,
  },
];

export function redactString(value: string): string {
  let out = value;
  for (const { pattern, replace } of VALUE_PATTERNS) {
    out = out.replace(pattern, replace as (substring: string, ...args: unknown[]) => string);
  }
  return out;
}

const MAX_DEPTH = 8;

/** Returns a redacted deep copy of `value`; never mutates the input. */
export function redact(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1, seen));
  if (value instanceof Error) {
    return {
      name: value.name,
      message: redactString(value.message),
      ...(value.stack && { stack: redactString(value.stack) }),
    };
  }
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = isSecretField(key) && inner !== undefined && inner !== null ? REDACTED : redact(inner, depth + 1, seen);
  }
  return out;
}

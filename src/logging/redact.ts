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
    'mhex',
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

/**
 * Compound names: a field is secret when its normalised name contains one of these (`unlockContentSecret`,
 * `newJwtSecret`, `pmcPrivHex`, `jwtKeys`) ...
 */
const SECRET_FIELD_SUBSTRINGS = [
  'secret',
  'password',
  'passwd',
  'passphrase',
  'apikey',
  'privatekey',
  'privkey',
  'privhex',
  'xprv',
  'mnemonic',
  'seedphrase',
  'seedhex',
  'jwtkey',
  'cookie',
  'authorization',
].map(normaliseKey);

/**
 * ... or ends with one of these (`sessionToken`, `localPmsWif`, `emailOtp`, `verifyCode`, `walletSeed`), or has
 * `pass` as its last word (`redisPass`, but not `bypass`).
 */
const SECRET_FIELD_SUFFIXES = ['token', 'tokens', 'jwt', 'wif', 'otp', 'otps', 'seed', 'code', 'codes'].map(normaliseKey);

/** Names ending in `code` that are not secrets: status and error codes, opcodes. Compared normalised. */
const HARMLESS_CODE_NAMES = new Set(
  [
    'errorCode',
    'errorCodes',
    'errCode',
    'statusCode',
    'httpCode',
    'httpStatusCode',
    'exitCode',
    'signalCode',
    'responseCode',
    'reasonCode',
    'opcode',
    'countryCode',
    'currencyCode',
    'languageCode',
  ].map(normaliseKey),
);

/**
 * The last word of a name that describes something *about* a secret rather than the secret itself: which key
 * (`apiKeyId`, `jwtKeyIdentifier`), its kind (`secretMode`) or when it changes. Such names stay visible unless the
 * exact list above names them. Only the substring rule yields to these; a secret suffix is the last word already.
 */
const METADATA_LAST_WORDS = new Set([
  'id',
  'ids',
  'identifier',
  'identifiers',
  'kid',
  'kids',
  'type',
  'kind',
  'mode',
  'name',
  'version',
  'purpose',
  'count',
  'length',
  'ttl',
  'sec',
  'ms',
  'at',
  'path',
  'file',
  'required',
  'configured',
]);

function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, '');
}

function lastWord(key: string): string {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_.-]+/)
    .filter(Boolean);
  return (words[words.length - 1] ?? '').toLowerCase();
}

export function isSecretField(key: string): boolean {
  const k = normaliseKey(key);
  if (SECRET_FIELD_NAMES.has(k) || SECRET_FIELD_PREFIXES.some((p) => k.startsWith(p))) return true;
  if (SECRET_FIELD_SUFFIXES.some((suffix) => k.endsWith(suffix))) {
    return !(HARMLESS_CODE_NAMES.has(k) || k.endsWith('opcode'));
  }
  const last = lastWord(key);
  if (last === 'pass') return true;
  return SECRET_FIELD_SUBSTRINGS.some((part) => k.includes(part)) && !METADATA_LAST_WORDS.has(last);
}

/** An error code constant such as `NOT_FOUND` or `CONFLICT` (docs/ERRORS.md); verification codes are digits. */
const ERROR_CODE_VALUE = /^[A-Z]{2,}(_[A-Z0-9]+)*$/;

/**
 * `code` inside an error envelope (`{ error: { code, message, requestId } }`, docs/ERRORS.md) names the error, not a
 * secret; it stays visible when its value looks like an error code constant.
 */
function isEnvelopeErrorCode(parentKey: string | undefined, key: string, value: unknown): boolean {
  return (
    parentKey !== undefined &&
    normaliseKey(parentKey) === 'error' &&
    key === 'code' &&
    typeof value === 'string' &&
    ERROR_CODE_VALUE.test(value)
  );
}

const VALUE_PATTERNS: { pattern: RegExp; replace: (match: string, ...groups: string[]) => string }[] = [
  // JSON Web Tokens.
  { pattern: /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, replace: () => REDACTED },
  // Stored API keys (`pp_<mode>_<id>_<secret>`, src/tenancy/apiKeys.ts) quoted in free text, such as an error message
  // that repeats a header: the id stays so the key can still be named, the secret goes.
  {
    pattern: /\b(pp_(?:live|test)_[0-9a-f]{16})_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g,
    replace: (_m, prefix) => `${prefix}_${REDACTED}`,
  },
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
export function redact(value: unknown): unknown {
  return redactValue(value, 0, new WeakSet(), undefined);
}

function redactValue(value: unknown, depth: number, seen: WeakSet<object>, ownKey: string | undefined): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, seen, undefined));
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
    const masked = inner !== undefined && inner !== null && isSecretField(key) && !isEnvelopeErrorCode(ownKey, key, inner);
    out[key] = masked ? REDACTED : redactValue(inner, depth + 1, seen, key);
  }
  return out;
}

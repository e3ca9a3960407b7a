import { createHash } from 'node:crypto';

/**
 * Canonical JSON for what the issuer signs and what gets anchored: the same value always serialises to the same
 * bytes, whatever order its keys were built in. Keys sorted by UTF-16 code units (as RFC 8785), strings NFC-normalised,
 * no whitespace, and only types whose serialisation is unambiguous: strings, safe integers, booleans, null,
 * arrays and plain objects. `undefined` members are left out; anything else (floats, dates, NaN) is refused.
 */
export type CanonicalValue = string | number | boolean | null | CanonicalValue[] | { [key: string]: CanonicalValue | undefined };

export class CanonicalFormError extends Error {
  constructor(path: string, reason: string) {
    super(`cannot canonicalise ${path || '(root)'}: ${reason}`);
    this.name = 'CanonicalFormError';
  }
}

export function canonicalJson(value: CanonicalValue, path = ''): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.normalize('NFC'));
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new CanonicalFormError(path, 'numbers must be safe integers');
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v, i) => canonicalJson(v, `${path}[${i}]`)).join(',')}]`;
      if (Object.getPrototypeOf(value) !== Object.prototype) throw new CanonicalFormError(path, 'only plain objects');
      const keys = Object.keys(value)
        .filter((k) => value[k] !== undefined)
        .sort();
      const normalised = new Set(keys.map((k) => k.normalize('NFC')));
      if (normalised.size !== keys.length) throw new CanonicalFormError(path, 'two keys are the same after NFC normalisation');
      return `{${keys.map((k) => `${JSON.stringify(k.normalize('NFC'))}:${canonicalJson(value[k]!, `${path}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new CanonicalFormError(path, `type ${typeof value} has no canonical form`);
  }
}

/** sha256 of the canonical JSON's UTF-8 bytes, as 64 lower-case hex characters: the digest the issuer signs. */
export function canonicalHash(value: CanonicalValue): string {
  return createHash('sha256').update(canonicalJson(value), 'utf8').digest('hex');
}

/** A time as signed records carry it: ISO 8601, whole seconds, UTC (`2026-11-28T01:02:03Z`). */
export function wholeSecondsIso(time: Date): string {
  return new Date(Math.floor(time.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

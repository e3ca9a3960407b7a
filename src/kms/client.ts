import type { KeyObject } from 'node:crypto';
import { PublicKey, Signature } from '@bsv/sdk';
import { fullJitterDelay, scrubWireText } from '../net/retry';
import { isKmsError, KmsError, type KmsErrorKind } from './errors';
import {
  DIGEST_HEX,
  nativePublicKey,
  parsePublicKeyHex,
  sha256,
  toLowS,
  verifyDigestSignature,
  verifySha256Signature,
} from '../chain/ecdsa';

/**
 * Client of the KMS HTTP contract (docs/ARCHITECTURE.md, "The KMS contract"): keys never enter our processes.
 * Nothing it returns is trusted as sent: every signature is parsed, normalised to low-S and verified over the digest
 * against the public key we expect for that key identifier before a caller sees it.
 */

export interface KmsClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Per attempt, covering the response body too. */
  timeoutMs: number;
  /** Total attempts per call, the first included. */
  retryAttempts: number;
  fetchImpl?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Told the outcome and duration of every call (retries included), e.g. to count them in metrics. */
  observe?: (call: { operation: KmsOperation; outcome: 'success' | KmsErrorKind; seconds: number }) => void;
}

/** Operation names as reported to `observe`: bounded, never a key identifier. */
export type KmsOperation =
  'sign' | 'public_key' | 'svd_derive_secret' | 'disable_key' | 'tag_key_version' | 'tag_diversify' | 'tag_sun_session';

/** The current version of an NTAG 424 DNA master key (AES-128, never leaves the KMS). */
export interface TagKeyVersion {
  keyIdentifier: string;
  version: number;
}

/** One tag's keys, diversified from a master version (AN10922): what a factory writes into the tag. */
export interface ProvisionedTagKeys extends TagKeyVersion {
  sdmMetaReadKeyHex: string;
  sdmFileReadKeyHex: string;
}

/** A reading of a tap's PICCData under one master version, with the session MAC key for that tag and counter. */
export interface SunSessionCandidate {
  version: number;
  uidHex: string;
  readCounter: number;
  sessionMacKeyHex: string;
}

export interface KmsSignRequest {
  keyIdentifier: string;
  /** The 32-byte digest to sign as given, in hex: hash256(preimage) for a transaction input. */
  digestHex: string;
  /**
   * The 32 bytes whose sha256 is the digest (sha256(preimage) for an input), when the caller has them. Never sent:
   * the KMS signs the digest; with it the answer is verified by OpenSSL instead of in JavaScript.
   */
  messageHex?: string;
}

export interface KmsSignature {
  /** DER, always low-S, without a sighash byte. */
  signatureDerHex: string;
  /** Compressed SEC1. */
  pubKeyHex: string;
}

export interface KmsPublicKey {
  /** The key's name, without a version. */
  keyIdentifier: string;
  version: number;
  /** Compressed SEC1. */
  pubKeyHex: string;
}

export interface SvdSecretRequest {
  Mhex: string;
  pmcHex: string;
  keyIdentifier?: string;
}

export interface SvdSecret {
  sharedSecretHex: string;
  kid?: string;
}

export interface KmsClient {
  /** Every signature `sign` returns was verified over its digest against the key's registered public key. */
  readonly verifiesSignatures: true;
  /** Signs every digest in one HTTP call; results are index-aligned with `requests`. */
  sign(requests: readonly KmsSignRequest[]): Promise<KmsSignature[]>;
  /** `name` is the current version, `name@N` a fixed one. Cached until forgetPublicKey. */
  publicKey(keyIdentifier: string): Promise<KmsPublicKey>;
  /** Drops the cached key, e.g. after a rotation made a new version current. */
  forgetPublicKey(keyIdentifier: string): void;
  deriveSvdSecret(input: SvdSecretRequest): Promise<SvdSecret>;
  /** Asks the KMS to refuse further use of a key (`name@N` or `name`); rotations call it when they retire a key. */
  disableKey(keyIdentifier: string): Promise<void>;
  tagKeyVersion(keyIdentifier: string): Promise<TagKeyVersion>;
  /** Per-tag keys for provisioning (factory, tag simulator); the API never calls it. */
  provisionTagKeys(keyIdentifier: string, uidHex: string, version?: number): Promise<ProvisionedTagKeys>;
  /** Opens a tap's PICCData inside the KMS: the caller gets UID, counter and a session MAC key, never a master. */
  sunSession(keyIdentifier: string, piccDataHex: string): Promise<SunSessionCandidate[]>;
}

export const BACKOFF_BASE_MS = 200;
export const BACKOFF_CAP_MS = 4_000;

/** Full jitter: spreads the retries of many workers that failed together. */
export function backoffDelayMs(failedAttempt: number, random: () => number = Math.random): number {
  return fullJitterDelay(failedAttempt - 1, random, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
}

const PINNED_IDENTIFIER = /^(.+)@([1-9]\d*)$/;
const WIRE_TEXT_LIMIT = 200;

type Json = Record<string, unknown>;

const isRecord = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

export function createKmsClient(options: KmsClientOptions): KmsClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const fetchImpl = options.fetchImpl ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const attempts = Math.max(1, Math.floor(options.retryAttempts));
  const publicKeys = new Map<string, Promise<KmsPublicKey>>();
  const parsedKeys = new Map<string, { key: PublicKey; native: KeyObject | null }>();

  /** Text that came from the wire or from a URL: no credential may survive into an error message. */
  const scrub = (text: string): string => scrubWireText(text, options.apiKey);

  async function callOnce(operation: string, method: 'GET' | 'POST', path: string, body: unknown): Promise<unknown> {
    let response: Response;
    let text: string;
    try {
      response = await fetchImpl(`${baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.apiKey}`,
          accept: 'application/json',
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(options.timeoutMs),
        // A KMS has no reason to redirect, and following one could carry the bearer elsewhere.
        redirect: 'manual',
      });
      text = await response.text();
    } catch (err) {
      throw transportError(operation, err);
    }
    const { status } = response;
    if (status >= 200 && status < 300) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new KmsError('malformed', `KMS ${operation}: the response is not JSON`, { status });
      }
    }
    const kind: KmsErrorKind =
      status === 401 || status === 403 ? 'unauthorized' : status === 429 ? 'throttled' : status >= 500 ? 'server' : 'rejected';
    const reason = wireReason(text);
    throw new KmsError(kind, `KMS ${operation}: HTTP ${status}${reason ? `: ${reason}` : ''}`, { status });
  }

  function transportError(operation: string, err: unknown): KmsError {
    // Duck-typed: fetch's errors may come from another realm (DOMException, undici), where instanceof fails.
    const error: Json = isRecord(err) ? err : { message: String(err) };
    if (error.name === 'TimeoutError' || error.name === 'AbortError') {
      return new KmsError('timeout', `KMS ${operation}: no complete response within ${options.timeoutMs} ms`);
    }
    const message = typeof error.message === 'string' ? error.message : 'request failed';
    const code = isRecord(error.cause) && typeof error.cause.code === 'string' ? ` (${error.cause.code})` : '';
    return new KmsError('network', `KMS ${operation}: ${scrub(message)}${code}`, {}, { cause: err });
  }

  /** The KMS's own explanation, from our error envelope or a plain body, shortened and scrubbed. */
  function wireReason(text: string): string {
    let reason = text;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (isRecord(parsed)) {
        const error = parsed.error;
        if (isRecord(error) && typeof error.message === 'string') reason = error.message;
        else if (typeof error === 'string') reason = error;
        else if (typeof parsed.message === 'string') reason = parsed.message;
      }
    } catch {
      // Not JSON: keep the text.
    }
    const short = reason.replace(/\s+/g, ' ').trim().slice(0, WIRE_TEXT_LIMIT);
    return scrub(short);
  }

  async function call(kind: KmsOperation, operation: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    if (!options.observe) return callWithRetries(operation, method, path, body);
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const result = await callWithRetries(operation, method, path, body);
      options.observe({ operation: kind, outcome: 'success', seconds: seconds() });
      return result;
    } catch (err) {
      options.observe({ operation: kind, outcome: isKmsError(err) ? err.kind : 'network', seconds: seconds() });
      throw err;
    }
  }

  async function callWithRetries(operation: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await callOnce(operation, method, path, body);
      } catch (err) {
        const error = err as KmsError;
        if (!error.retryable || attempt >= attempts) {
          const suffix = attempt > 1 ? ` (after ${attempt} attempts)` : '';
          throw new KmsError(error.kind, `${error.message}${suffix}`, { ...error.details, attempts: attempt }, { cause: error.cause });
        }
        await sleep(backoffDelayMs(attempt));
      }
    }
  }

  async function fetchPublicKey(keyIdentifier: string): Promise<KmsPublicKey> {
    const operation = `public key of ${keyIdentifier}`;
    const body = await call('public_key', operation, 'GET', `/keys/${encodeURIComponent(keyIdentifier)}`);
    if (
      !isRecord(body) ||
      typeof body.keyIdentifier !== 'string' ||
      !Number.isSafeInteger(body.version) ||
      typeof body.pubKeyHex !== 'string'
    ) {
      throw new KmsError('malformed', `KMS ${operation}: expected {keyIdentifier, version, pubKeyHex}`);
    }
    const version = body.version as number;
    const parsed = parsePublicKeyHex(body.pubKeyHex);
    if (!parsed || version < 1) throw new KmsError('malformed', `KMS ${operation}: not a valid secp256k1 public key and version`);
    const pinned = PINNED_IDENTIFIER.exec(keyIdentifier);
    const [name, pinnedVersion] = pinned ? [pinned[1], Number(pinned[2])] : [keyIdentifier, undefined];
    if (body.keyIdentifier !== name || (pinnedVersion !== undefined && version !== pinnedVersion)) {
      throw new KmsError('wrong_key', `KMS ${operation}: answered for ${scrub(body.keyIdentifier)}@${version}`);
    }
    return { keyIdentifier: name, version, pubKeyHex: parsed.compressedHex };
  }

  function publicKey(keyIdentifier: string): Promise<KmsPublicKey> {
    const cached = publicKeys.get(keyIdentifier);
    if (cached) return cached;
    // Caching the promise lets concurrent first callers share one lookup.
    const lookup = fetchPublicKey(keyIdentifier).then(
      (key) => {
        const pinnedId = `${key.keyIdentifier}@${key.version}`;
        if (!publicKeys.has(pinnedId)) publicKeys.set(pinnedId, Promise.resolve(key));
        return key;
      },
      (err: unknown) => {
        publicKeys.delete(keyIdentifier);
        throw err;
      },
    );
    publicKeys.set(keyIdentifier, lookup);
    return lookup;
  }

  /** An expected key (validated when it was looked up) with its OpenSSL form, parsed once per process. */
  function parsedKey(expected: KmsPublicKey): { key: PublicKey; native: KeyObject | null } {
    let entry = parsedKeys.get(expected.pubKeyHex);
    if (!entry) {
      const key = PublicKey.fromString(expected.pubKeyHex);
      entry = { key, native: nativePublicKey(key.encode(true) as number[]) };
      parsedKeys.set(expected.pubKeyHex, entry);
    }
    return entry;
  }

  function checkedSignature(request: KmsSignRequest, entry: unknown, expected: KmsPublicKey, index: number): KmsSignature {
    const where = `KMS sign: signature ${index} (${request.keyIdentifier})`;
    if (!isRecord(entry) || typeof entry.signatureHex !== 'string' || typeof entry.pubKeyHex !== 'string') {
      throw new KmsError('malformed', `${where}: expected {signatureHex, pubKeyHex}`);
    }
    let signature: Signature;
    try {
      signature = toLowS(Signature.fromDER(entry.signatureHex, 'hex'));
    } catch {
      throw new KmsError('malformed', `${where}: signatureHex is not a DER signature`);
    }
    // The expected key's own encoding needs no parsing; any other is parsed to see whether it is the same key.
    const returnedHex = entry.pubKeyHex === expected.pubKeyHex ? expected.pubKeyHex : parsePublicKeyHex(entry.pubKeyHex)?.compressedHex;
    if (!returnedHex) throw new KmsError('malformed', `${where}: pubKeyHex is not a secp256k1 public key`);
    if (returnedHex !== expected.pubKeyHex) {
      throw new KmsError('wrong_key', `${where}: signed by ${returnedHex}, expected ${expected.pubKeyHex}`);
    }
    const key = parsedKey(expected);
    const verifies =
      request.messageHex !== undefined && key.native
        ? verifySha256Signature(Buffer.from(request.messageHex, 'hex'), signature, key.native)
        : verifyDigestSignature([...Buffer.from(request.digestHex, 'hex')], signature, key.key);
    if (!verifies) {
      throw new KmsError('invalid_signature', `${where}: does not verify over the requested digest`);
    }
    return { signatureDerHex: signature.toDER('hex') as string, pubKeyHex: expected.pubKeyHex };
  }

  async function sign(requests: readonly KmsSignRequest[]): Promise<KmsSignature[]> {
    if (requests.length === 0) return [];
    requests.forEach((request, index) => {
      if (typeof request.keyIdentifier !== 'string' || request.keyIdentifier.length === 0) {
        throw new KmsError('rejected', `KMS sign not sent: request ${index} has no keyIdentifier`);
      }
      if (typeof request.digestHex !== 'string' || !DIGEST_HEX.test(request.digestHex)) {
        throw new KmsError('rejected', `KMS sign not sent: request ${index} digestHex is not 32 bytes of hex`);
      }
      if (
        request.messageHex !== undefined &&
        (!DIGEST_HEX.test(request.messageHex) ||
          sha256(Buffer.from(request.messageHex, 'hex')).toString('hex') !== request.digestHex.toLowerCase())
      ) {
        throw new KmsError('rejected', `KMS sign not sent: request ${index} messageHex does not hash to its digestHex`);
      }
    });
    const keyIdentifiers = [...new Set(requests.map((r) => r.keyIdentifier))];
    const expectedKeys = new Map(await Promise.all(keyIdentifiers.map(async (id) => [id, await publicKey(id)] as const)));

    const body = await call('sign', 'sign', 'POST', '/sign', {
      requests: requests.map((r) => ({ keyIdentifier: r.keyIdentifier, sighash: r.digestHex.toLowerCase() })),
    });
    if (!isRecord(body) || !Array.isArray(body.signatures)) {
      throw new KmsError('malformed', 'KMS sign: the response has no signatures array');
    }
    const signatures: unknown[] = body.signatures;
    if (signatures.length !== requests.length) {
      throw new KmsError('misaligned', `KMS sign: ${signatures.length} signatures for ${requests.length} requests`);
    }
    return requests.map((request, index) => checkedSignature(request, signatures[index], expectedKeys.get(request.keyIdentifier)!, index));
  }

  async function deriveSvdSecret(input: SvdSecretRequest): Promise<SvdSecret> {
    const body = await call('svd_derive_secret', 'svd derive-secret', 'POST', '/svd/derive-secret', {
      Mhex: input.Mhex,
      pmcHex: input.pmcHex,
      ...(input.keyIdentifier !== undefined && { keyIdentifier: input.keyIdentifier }),
    });
    // The secret itself never goes into a message.
    if (!isRecord(body) || typeof body.sharedSecretHex !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(body.sharedSecretHex)) {
      throw new KmsError('malformed', 'KMS svd derive-secret: expected {sharedSecretHex, kid?} with a hex secret');
    }
    if (body.kid !== undefined && typeof body.kid !== 'string') {
      throw new KmsError('malformed', 'KMS svd derive-secret: kid is not a string');
    }
    return { sharedSecretHex: body.sharedSecretHex.toLowerCase(), ...(body.kid !== undefined && { kid: body.kid }) };
  }

  const HEX16 = /^[0-9a-fA-F]{32}$/;
  const tagPath = (keyIdentifier: string, tail = '') => `/tag-keys/${encodeURIComponent(keyIdentifier)}${tail}`;

  function tagVersionOf(body: unknown, keyIdentifier: string, operation: string): TagKeyVersion {
    if (!isRecord(body) || body.keyIdentifier !== keyIdentifier || !Number.isSafeInteger(body.version) || (body.version as number) < 1) {
      throw new KmsError('malformed', `KMS ${operation}: expected {keyIdentifier, version} for ${scrub(keyIdentifier)}`);
    }
    return { keyIdentifier, version: body.version as number };
  }

  async function tagKeyVersion(keyIdentifier: string): Promise<TagKeyVersion> {
    const operation = `tag key version of ${keyIdentifier}`;
    return tagVersionOf(await call('tag_key_version', operation, 'GET', tagPath(keyIdentifier)), keyIdentifier, operation);
  }

  async function provisionTagKeys(keyIdentifier: string, uidHex: string, version?: number): Promise<ProvisionedTagKeys> {
    const operation = `tag keys of ${keyIdentifier}`;
    const body = await call('tag_diversify', operation, 'POST', tagPath(keyIdentifier, '/diversify'), {
      uidHex,
      ...(version !== undefined && { version }),
    });
    const versioned = tagVersionOf(body, keyIdentifier, operation);
    const keys = body as Json;
    // Key material never goes into a message.
    if (
      typeof keys.sdmMetaReadKeyHex !== 'string' ||
      !HEX16.test(keys.sdmMetaReadKeyHex) ||
      typeof keys.sdmFileReadKeyHex !== 'string' ||
      !HEX16.test(keys.sdmFileReadKeyHex)
    ) {
      throw new KmsError('malformed', `KMS ${operation}: expected two 16-byte keys in hex`);
    }
    return {
      ...versioned,
      sdmMetaReadKeyHex: keys.sdmMetaReadKeyHex.toLowerCase(),
      sdmFileReadKeyHex: keys.sdmFileReadKeyHex.toLowerCase(),
    };
  }

  async function sunSession(keyIdentifier: string, piccDataHex: string): Promise<SunSessionCandidate[]> {
    if (!HEX16.test(piccDataHex)) throw new KmsError('rejected', 'KMS sun-session not sent: PICCData is not 16 bytes of hex');
    const operation = `sun-session of ${keyIdentifier}`;
    const body = await call('tag_sun_session', operation, 'POST', tagPath(keyIdentifier, '/sun-session'), { piccDataHex });
    if (!isRecord(body) || !Array.isArray(body.candidates)) throw new KmsError('malformed', `KMS ${operation}: expected {candidates}`);
    return body.candidates.map((entry: unknown) => {
      if (
        !isRecord(entry) ||
        !Number.isSafeInteger(entry.version) ||
        typeof entry.uidHex !== 'string' ||
        !/^[0-9a-fA-F]{14}$/.test(entry.uidHex) ||
        !Number.isSafeInteger(entry.readCounter) ||
        typeof entry.sessionMacKeyHex !== 'string' ||
        !HEX16.test(entry.sessionMacKeyHex)
      ) {
        throw new KmsError('malformed', `KMS ${operation}: a candidate is not {version, uidHex, readCounter, sessionMacKeyHex}`);
      }
      return {
        version: entry.version as number,
        uidHex: entry.uidHex.toUpperCase(),
        readCounter: entry.readCounter as number,
        sessionMacKeyHex: entry.sessionMacKeyHex.toLowerCase(),
      };
    });
  }

  return {
    tagKeyVersion,
    provisionTagKeys,
    sunSession,
    verifiesSignatures: true,
    sign,
    publicKey,
    forgetPublicKey: (keyIdentifier) => {
      publicKeys.delete(keyIdentifier);
    },
    deriveSvdSecret,
    async disableKey(keyIdentifier) {
      await call('disable_key', `disable ${keyIdentifier}`, 'POST', `/keys/${encodeURIComponent(keyIdentifier)}/disable`, {});
      publicKeys.delete(keyIdentifier);
    },
  };
}

import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { LRUCache } from 'lru-cache';

export interface ImageProxyOptions {
  /** Hosts (`host` or `host:port`, as in a URL) whose images may be fetched; empty turns the proxy off. */
  hosts: string[];
  maxBytes: number;
  cacheTtlMs: number;
  /** Dev and tests only: allows http and loopback or private addresses. */
  allowLocal: boolean;
}

export interface ProxiedImage {
  body: Buffer;
  contentType: string;
}

/** Why an image is not served; `unavailable` is the image host failing, the rest are the image's own faults. */
export class ImageProxyError extends Error {
  constructor(
    readonly kind: 'not-allowed' | 'unavailable' | 'too-large' | 'not-an-image',
    message: string,
  ) {
    super(message);
    this.name = 'ImageProxyError';
  }
}

/** Raster types only: an SVG is a document that can carry script and links. */
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/avif']);
const FETCH_TIMEOUT_MS = 5_000;
/** Memory the kept images may take in one API process. */
const CACHE_MAX_BYTES = 64 * 1024 * 1024;

/** Addresses an image fetch must never reach: loopback, private, link-local (cloud metadata), shared, multicast. */
const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const)
  NON_PUBLIC.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 127],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6');

export function isPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isPublicAddress(mapped[1]!);
  const family = isIP(address);
  if (family === 0) return false;
  return !NON_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The product image proxy: the page never links a brand's image URL, it shows `/v1/patches/:uid/image`, which
 * fetches the URL of the signed record here. Only from the configured hosts, over https, to public addresses
 * (checked on the address actually connected to, so DNS rebinding cannot reach inside), without redirects, within a
 * size limit and a deadline, raster image types only; kept in memory for the configured time.
 */
export class ImageProxy {
  private readonly cache: LRUCache<string, ProxiedImage>;
  private readonly inFlight = new Map<string, Promise<ProxiedImage>>();

  constructor(private readonly options: ImageProxyOptions) {
    this.cache = new LRUCache({
      maxSize: CACHE_MAX_BYTES,
      sizeCalculation: (image) => Math.max(1, image.body.length),
      ttl: Math.max(1, options.cacheTtlMs),
    });
  }

  /** True when `url` may be fetched: an allowed host and scheme. Addresses are checked when connecting. */
  allows(url: string): boolean {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return false;
    }
    const schemeOk = parsed.protocol === 'https:' || (this.options.allowLocal && parsed.protocol === 'http:');
    return schemeOk && !parsed.username && !parsed.password && this.options.hosts.includes(parsed.host.toLowerCase());
  }

  async image(url: string): Promise<ProxiedImage> {
    if (!this.allows(url)) throw new ImageProxyError('not-allowed', 'the image host is not allowed');
    const kept = this.options.cacheTtlMs > 0 ? this.cache.get(url) : undefined;
    if (kept) return kept;
    const running = this.inFlight.get(url);
    if (running) return running;
    const fetching = this.fetch(new URL(url))
      .then((image) => {
        if (this.options.cacheTtlMs > 0) this.cache.set(url, image);
        return image;
      })
      .finally(() => this.inFlight.delete(url));
    this.inFlight.set(url, fetching);
    return fetching;
  }

  private fetch(url: URL): Promise<ProxiedImage> {
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    // An IP literal is connected to without a lookup, so it is checked here.
    if (isIP(literal) && !this.options.allowLocal && !isPublicAddress(literal))
      return Promise.reject(new ImageProxyError('not-allowed', 'the image host is not a public address'));
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<ProxiedImage>((resolve, reject) => {
      const request = client.get(
        url,
        { lookup: this.guardedLookup, timeout: FETCH_TIMEOUT_MS, headers: { accept: [...IMAGE_TYPES].join(', ') } },
        (response) => {
          const fail = (error: ImageProxyError) => {
            response.destroy();
            reject(error);
          };
          // No redirects: a redirect could lead anywhere the allow-list does not.
          if (response.statusCode !== 200)
            return fail(new ImageProxyError('unavailable', `the image host answered ${response.statusCode}`));
          const contentType = (response.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          if (!IMAGE_TYPES.has(contentType)) return fail(new ImageProxyError('not-an-image', 'the image host sent no raster image'));
          if (Number(response.headers['content-length'] ?? 0) > this.options.maxBytes)
            return fail(new ImageProxyError('too-large', 'the image is larger than the limit'));
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.options.maxBytes) fail(new ImageProxyError('too-large', 'the image is larger than the limit'));
            else chunks.push(chunk);
          });
          response.on('end', () => resolve({ body: Buffer.concat(chunks), contentType }));
          response.on('error', () => reject(new ImageProxyError('unavailable', 'the image transfer failed')));
        },
      );
      request.on('timeout', () => request.destroy(new ImageProxyError('unavailable', 'the image host did not answer in time')));
      request.on('error', (err) =>
        reject(err instanceof ImageProxyError ? err : new ImageProxyError('unavailable', 'the image host is unreachable')),
      );
    });
  }

  /** dns.lookup that refuses non-public addresses (unless allowLocal), used for the connection itself. */
  private readonly guardedLookup = (
    hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const usable = this.options.allowLocal ? addresses : addresses.filter((a) => isPublicAddress(a.address));
      if (usable.length === 0) return callback(new ImageProxyError('not-allowed', 'the image host is not a public address'), '');
      if (options.all) return callback(null, usable);
      callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
}

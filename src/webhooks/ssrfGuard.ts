import { BlockList, isIP } from 'node:net';

/**
 * Where a webhook may be delivered. Pure: the resolver is passed in, so the rules are tested without DNS. The
 * delivery connects to the address this returns (pinned), never resolving the name again, so a DNS answer that
 * changes between the check and the connection (rebinding) cannot move it inside.
 */

export interface WebhookTargetPolicy {
  /** Dev and tests: http, and loopback addresses (only loopback: private ranges stay refused). */
  allowLoopbackHttp: boolean;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address of a host name, as dns.promises.lookup(host, { all: true }) gives them. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export type TargetRefusal = 'invalid-url' | 'scheme' | 'credentials' | 'non-public-address' | 'unresolvable';

export class WebhookTargetRefused extends Error {
  constructor(
    readonly reason: TargetRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookTargetRefused';
  }
}

export interface CheckedTarget {
  url: URL;
  /** The address to connect to: checked, and the only one used. */
  pinned: ResolvedAddress;
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // unspecified, "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT shared space
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3], // multicast and reserved, up to the broadcast address
] as const)
  blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64 can reach private IPv4
  ['100::', 64],
  ['2001:db8::', 32],
  ['2002::', 16], // 6to4 embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const)
  blocked.addSubnet(net, prefix, 'ipv6');

// Kept apart: BlockList matches plain IPv4 addresses against ::ffff:0:0/96 too, which would refuse every IPv4 address.
const ipv4Mapped = new BlockList();
ipv4Mapped.addSubnet('::ffff:0:0', 96, 'ipv6');

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** An address a webhook may be sent to: public unicast. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  // IPv4-mapped IPv6 is refused whatever it maps to, in any spelling.
  if (family === 6 && ipv4Mapped.check(address, 'ipv6')) return false;
  return !blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && loopback.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

function addressAllowed(address: string, policy: WebhookTargetPolicy): boolean {
  return isPublicAddress(address) || (policy.allowLoopbackHttp && isLoopbackAddress(address));
}

/** The URL's form alone: scheme and no credentials. Run when an endpoint is registered and before each delivery. */
export function checkWebhookUrl(raw: string, policy: WebhookTargetPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookTargetRefused('invalid-url', 'the URL does not parse');
  }
  const schemeOk = url.protocol === 'https:' || (policy.allowLoopbackHttp && url.protocol === 'http:');
  if (!schemeOk) throw new WebhookTargetRefused('scheme', policy.allowLoopbackHttp ? 'the URL must be http(s)' : 'the URL must be https');
  if (url.username || url.password) throw new WebhookTargetRefused('credentials', 'the URL must not carry credentials');
  return url;
}

/**
 * Resolves the URL's host and checks every address it has (one bad address refuses the host: a name that also
 * points inside is not a public endpoint); answers the first address, to connect to.
 */
export async function resolveWebhookTarget(raw: string, policy: WebhookTargetPolicy, resolve: Resolver): Promise<CheckedTarget> {
  const url = checkWebhookUrl(raw, policy);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host);
  let addresses: ResolvedAddress[];
  if (literal) addresses = [{ address: host, family: literal as 4 | 6 }];
  else {
    try {
      addresses = await resolve(host);
    } catch {
      throw new WebhookTargetRefused('unresolvable', 'the host name does not resolve');
    }
  }
  if (addresses.length === 0) throw new WebhookTargetRefused('unresolvable', 'the host name does not resolve');
  if (!addresses.every((a) => addressAllowed(a.address, policy)))
    throw new WebhookTargetRefused('non-public-address', 'the host resolves to a non-public address');
  return { url, pinned: addresses[0]! };
}

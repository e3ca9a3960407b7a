import { isPublicAddress, resolveWebhookTarget, type ResolvedAddress, type Resolver } from '../../../src/webhooks/ssrfGuard';

/** The DNS border is the only stand-in: each name answers the addresses listed here, and every lookup is counted. */
function stubResolver(answers: Record<string, ResolvedAddress[]>): Resolver & { lookups: string[] } {
  const lookups: string[] = [];
  const resolve = (host: string) => {
    lookups.push(host);
    const found = answers[host];
    if (!found) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(found);
  };
  return Object.assign(resolve, { lookups });
}

const v4 = (address: string): ResolvedAddress => ({ address, family: 4 });
const v6 = (address: string): ResolvedAddress => ({ address, family: 6 });

const production = { allowLoopbackHttp: false };
const devFlag = { allowLoopbackHttp: true };

describe('webhook SSRF guard', () => {
  const resolver = stubResolver({
    'hooks.brand.example': [v4('93.184.216.34'), v6('2606:2800:220:1:248:1893:25c8:1946')],
    'localhost.brand.example': [v4('127.0.0.1')],
    'ten.brand.example': [v4('10.1.2.3')],
    'metadata.brand.example': [v4('169.254.169.254')],
    'v6-loopback.brand.example': [v6('::1')],
    'mixed.brand.example': [v4('93.184.216.34'), v4('192.168.1.10')],
    'cgnat.brand.example': [v4('100.64.0.7')],
    'mapped.brand.example': [v6('::ffff:127.0.0.1')],
    'mapped-hex.brand.example': [v6('::ffff:a00:1')],
    'multicast.brand.example': [v4('239.1.1.1')],
    'unspecified.brand.example': [v4('0.0.0.0')],
    'ula.brand.example': [v6('fd12:3456::1')],
    'empty.brand.example': [],
  });

  it('accepts an https URL whose every address is public, and pins the first one to connect to', async () => {
    const target = await resolveWebhookTarget('https://hooks.brand.example/patchproof', production, resolver);
    expect(target.pinned).toEqual(v4('93.184.216.34'));
    expect(target.url.hostname).toBe('hooks.brand.example');
  });

  it.each([
    ['localhost.brand.example', '127.0.0.1'],
    ['ten.brand.example', '10.x'],
    ['metadata.brand.example', '169.254.169.254 (cloud metadata)'],
    ['v6-loopback.brand.example', '[::1]'],
    ['cgnat.brand.example', 'CGNAT 100.64/10'],
    ['mapped.brand.example', 'IPv4-mapped ::ffff:127.0.0.1'],
    ['mapped-hex.brand.example', 'IPv4-mapped ::ffff:a00:1 (10.0.0.1)'],
    ['multicast.brand.example', 'multicast'],
    ['unspecified.brand.example', '0.0.0.0'],
    ['ula.brand.example', 'IPv6 unique local'],
  ])('refuses %s, which resolves to %s, in production', async (host) => {
    await expect(resolveWebhookTarget(`https://${host}/h`, production, resolver)).rejects.toMatchObject({
      name: 'WebhookTargetRefused',
      reason: 'non-public-address',
    });
  });

  it('refuses a host when any one of its addresses is private, even if another is public', async () => {
    await expect(resolveWebhookTarget('https://mixed.brand.example/h', production, resolver)).rejects.toMatchObject({
      reason: 'non-public-address',
    });
  });

  it.each([
    'https://127.0.0.1/h',
    'https://10.0.0.5/h',
    'https://169.254.169.254/latest/meta-data',
    'https://[::1]/h',
    'https://[::ffff:7f00:1]/h',
  ])('refuses the IP literal %s without a lookup', async (url) => {
    const before = resolver.lookups.length;
    await expect(resolveWebhookTarget(url, production, resolver)).rejects.toMatchObject({ reason: 'non-public-address' });
    expect(resolver.lookups.length).toBe(before);
  });

  it('refuses http, credentials in the URL, an unparsable URL and a name without addresses', async () => {
    await expect(resolveWebhookTarget('http://hooks.brand.example/h', production, resolver)).rejects.toMatchObject({ reason: 'scheme' });
    await expect(resolveWebhookTarget('ftp://hooks.brand.example/h', devFlag, resolver)).rejects.toMatchObject({ reason: 'scheme' });
    await expect(resolveWebhookTarget('https://u:p@hooks.brand.example/h', production, resolver)).rejects.toMatchObject({
      reason: 'credentials',
    });
    await expect(resolveWebhookTarget('not a url', production, resolver)).rejects.toMatchObject({ reason: 'invalid-url' });
    await expect(resolveWebhookTarget('https://nowhere.brand.example/h', production, resolver)).rejects.toMatchObject({
      reason: 'unresolvable',
    });
    await expect(resolveWebhookTarget('https://empty.brand.example/h', production, resolver)).rejects.toMatchObject({
      reason: 'unresolvable',
    });
  });

  it('with the dev flag allows http to loopback only: private and metadata addresses stay refused', async () => {
    expect((await resolveWebhookTarget('http://127.0.0.1:8092/hooks/a', devFlag, resolver)).pinned).toEqual(v4('127.0.0.1'));
    expect((await resolveWebhookTarget('http://[::1]:8092/hooks/a', devFlag, resolver)).pinned).toEqual(v6('::1'));
    expect((await resolveWebhookTarget('http://localhost.brand.example/h', devFlag, resolver)).pinned).toEqual(v4('127.0.0.1'));
    await expect(resolveWebhookTarget('http://ten.brand.example/h', devFlag, resolver)).rejects.toMatchObject({
      reason: 'non-public-address',
    });
    await expect(resolveWebhookTarget('http://metadata.brand.example/h', devFlag, resolver)).rejects.toMatchObject({
      reason: 'non-public-address',
    });
  });

  it('classifies addresses: public unicast only', () => {
    expect(['8.8.8.8', '93.184.216.34', '2606:4700::1111'].every(isPublicAddress)).toBe(true);
    expect(
      ['172.16.0.1', '192.168.0.1', '127.1.2.3', 'fe80::1', 'ff02::1', '::', '64:ff9b::a00:1', 'not-an-ip'].some(isPublicAddress),
    ).toBe(false);
  });
});

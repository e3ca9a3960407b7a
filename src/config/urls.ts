/**
 * Connection-string parsing for the fail-fast checks. These parse properly instead of matching a regex: a pattern
 * such as `:\\S+@` never sees a password in a Redis URL (`redis://:secret@host`) or one that is URL-encoded.
 */

export interface MongoUriInfo {
  scheme: 'mongodb' | 'mongodb+srv';
  hasCredentials: boolean;
  hosts: string[];
  database?: string;
}

const MONGO_URI = /^(mongodb(?:\+srv)?):\/\/(?:([^@/]*)@)?([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/;

export function parseMongoUri(uri: string): MongoUriInfo | null {
  const match = MONGO_URI.exec(uri);
  if (!match) return null;
  const [, scheme, userInfo, hostList, database, query] = match;
  const params = new URLSearchParams(query ?? '');
  const mechanism = params.get('authMechanism');
  // Certificate and cloud-identity mechanisms authenticate without a password in the URI.
  const passwordless = mechanism === 'MONGODB-X509' || mechanism === 'MONGODB-AWS' || mechanism === 'MONGODB-OIDC';
  let hasCredentials = passwordless;
  if (userInfo) {
    const colon = userInfo.indexOf(':');
    const user = colon >= 0 ? userInfo.slice(0, colon) : userInfo;
    const password = colon >= 0 ? userInfo.slice(colon + 1) : '';
    hasCredentials = hasCredentials || (user.length > 0 && password.length > 0);
  }
  const hosts = (hostList ?? '').split(',').filter((h) => h.length > 0);
  if (hosts.length === 0) return null;
  return {
    scheme: scheme as MongoUriInfo['scheme'],
    hasCredentials,
    hosts,
    ...(database ? { database: decodeURIComponent(database) } : {}),
  };
}

export interface RedisUrlInfo {
  tls: boolean;
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  hasPassword: boolean;
}

export function parseRedisUrl(value: string): RedisUrlInfo | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return null;
  if (!url.hostname) return null;
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const dbPath = url.pathname.replace(/^\//, '');
  const db = dbPath === '' ? 0 : Number(dbPath);
  if (!Number.isInteger(db) || db < 0) return null;
  return {
    tls: url.protocol === 'rediss:',
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 6379,
    ...(username !== undefined && { username }),
    ...(password !== undefined && { password }),
    db,
    hasPassword: password !== undefined && password.length > 0,
  };
}

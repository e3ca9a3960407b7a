import { parseMongoUri, parseRedisUrl } from '../../src/config/urls';

describe('connection strings', () => {
  it('parses replica-set MongoDB URIs with several hosts', () => {
    expect(parseMongoUri('mongodb://u:p@a:1,b:2/db?replicaSet=rs')).toEqual({
      scheme: 'mongodb',
      hasCredentials: true,
      hosts: ['a:1', 'b:2'],
      database: 'db',
    });
  });

  it('does not count a user without a password as credentials', () => {
    expect(parseMongoUri('mongodb://u@a/db')?.hasCredentials).toBe(false);
    expect(parseMongoUri('mongodb://u:@a/db')?.hasCredentials).toBe(false);
  });

  it('rejects what is not a MongoDB URI', () => {
    expect(parseMongoUri('postgres://a/b')).toBeNull();
    expect(parseMongoUri('mongodb:///db')).toBeNull();
  });

  it('parses Redis URLs with TLS, username, password and db index', () => {
    expect(parseRedisUrl('rediss://app:s%40cret@cache:6380/3')).toEqual({
      tls: true,
      host: 'cache',
      port: 6380,
      username: 'app',
      password: 's@cret',
      db: 3,
      hasPassword: true,
    });
    expect(parseRedisUrl('redis://127.0.0.1')).toMatchObject({ port: 6379, db: 0, hasPassword: false });
    expect(parseRedisUrl('http://cache')).toBeNull();
    expect(parseRedisUrl('redis://cache/x')).toBeNull();
  });
});

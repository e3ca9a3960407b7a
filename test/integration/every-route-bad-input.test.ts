import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { apiRoutes } from '../../api/app';
import type { RouteSpec } from '../../api/routing';
import { ERROR_CODES } from '../../src/errors';
import { loggedInOwner, type TestOwner } from '../support/patchApi';
import { REPO_ROOT } from '../support/processes';
import { startTestApi, type TestApi } from '../support/stack';

/**
 * Bad input on every route of the API, taken from the same route table the app mounts (apiRoutes), so a route added
 * later is covered without touching this file. Every answer must be a 4xx in the one error envelope, with a code
 * from the documented set and the X-Request-Id header equal to the envelope's requestId; and none of these requests
 * may write anything (Mongo documents, Redis keys other than the limiter's, Temporal workflows).
 */

const BODY_LIMIT_BYTES = 8 * 1024;
const HIGH = '1000000';

type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  pattern?: string;
  enum?: unknown[];
  format?: string;
  minimum?: number;
  maxLength?: number;
};

interface Attempt {
  route: string;
  name: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** What the answer must be, when the case fixes it; otherwise any 4xx in the envelope. */
  expect?: { status: number; code: string; detailPath?: string; reason?: string };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Raw HTTP, so paths go out exactly as written (`%00`, 5000 characters) and any method may carry a body. */
function send(baseUrl: string, attempt: Attempt): Promise<Answer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: attempt.method.toUpperCase(),
        path: attempt.path,
        headers: { ...attempt.headers, ...(attempt.body !== undefined && { 'content-length': Buffer.byteLength(attempt.body) }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    if (attempt.body !== undefined) req.write(attempt.body);
    req.end();
  });
}

function schemaOf(schema: unknown): JsonSchema | undefined {
  return schema ? (z.toJSONSchema(schema as z.ZodType, { io: 'input', unrepresentable: 'any' }) as JsonSchema) : undefined;
}

/** A value for a placeholder, chosen to satisfy the field's enum or pattern when one of the candidates does. */
function sampleString(schema: JsonSchema): string {
  if (schema.enum?.length) return String(schema.enum[0]);
  if (schema.format === 'date-time') return new Date(Date.now() + 5 * 60_000).toISOString();
  const candidates = [
    'PP-NOPE-1',
    'a'.repeat(24),
    'ab'.repeat(8),
    'ab'.repeat(24),
    'ab'.repeat(32),
    '02' + 'ab'.repeat(32),
    '123456',
    'nobody@example.com',
  ];
  if (!schema.pattern) return candidates[0]!;
  const pattern = new RegExp(schema.pattern);
  return candidates.find((c) => pattern.test(c)) ?? candidates[0]!;
}

/** A body with every required field present (optional ones left out), as close to valid as the schema alone allows. */
function sampleBody(schema: JsonSchema): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const name of schema.required ?? []) body[name] = sampleValue(schema.properties?.[name] ?? {});
  return body;
}

function sampleValue(schema: JsonSchema): unknown {
  if (schema.type === 'object') return sampleBody(schema);
  if (schema.type === 'boolean') return false;
  if (schema.type === 'number' || schema.type === 'integer') return schema.minimum ?? 1;
  if (schema.type === 'array') return [];
  return sampleString(schema);
}

/** Every string field of a body schema, nested ones included, as property paths. */
function stringFields(schema: JsonSchema, prefix: string[] = []): { path: string[]; schema: JsonSchema }[] {
  return Object.entries(schema.properties ?? {}).flatMap(([name, inner]) =>
    inner.type === 'object'
      ? stringFields(inner, [...prefix, name])
      : inner.type === 'string'
        ? [{ path: [...prefix, name], schema: inner }]
        : [],
  );
}

function withValue(base: Record<string, unknown>, at: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(base);
  let node = copy;
  for (const key of at.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[at.at(-1)!] = value;
  return copy;
}

/** Ids of the shapes the API's loose-typed path parameters take (claim, transfer, registration, pool operation). */
const PARAM_CANDIDATES = [
  `claim-PP-NOPE-1-${'a'.repeat(16)}`,
  `transfer-PP-NOPE-1-${'ab'.repeat(32)}`,
  'registration-PP-NOPE-1',
  'utxo-top-up-PP-NOPE-1',
  `pb-${'ab'.repeat(12)}`,
];

const expectsHex = (schema: JsonSchema) => /\[0-9a-f/i.test(schema.pattern ?? '');

/** The codes docs/ERRORS.md documents, from its table. */
function documentedCodes(): Set<string> {
  const text = readFileSync(path.join(REPO_ROOT, 'docs', 'ERRORS.md'), 'utf8');
  return new Set([...text.matchAll(/^\| `([A-Z_]+)`\s*\|/gm)].map((m) => m[1]!));
}

describe('bad input on every route of the route table', () => {
  let api: TestApi;
  let routes: RouteSpec[];
  let owner: TestOwner;
  let ownerSessionRoutes: Set<RouteSpec>;
  const started = new Date();

  const apiKey = () => api.deps.config.auth.apiKey;
  const label = (route: RouteSpec) => `${route.method.toUpperCase()} ${route.path}`;

  /** A value for path parameter `name` that the route's own params schema accepts (refinements included), when one fits. */
  function placeholder(route: RouteSpec, name: string): string {
    const schema = schemaOf(route.request?.params)?.properties?.[name] ?? {};
    const candidates = [sampleString(schema), ...PARAM_CANDIDATES];
    const fits = (value: string) => {
      const parsed = route.request?.params?.safeParse({ [name]: value });
      return !parsed || parsed.success || !parsed.error.issues.some((issue) => issue.path[0] === name);
    };
    return candidates.find(fits) ?? candidates[0]!;
  }

  /** The route's path with each `:param` filled by `fill` (by default a placeholder its schema accepts). */
  function pathOf(route: RouteSpec, fill: (name: string) => string = (name) => encodeURIComponent(placeholder(route, name))) {
    return route.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => fill(name));
  }

  /** Headers that get a request past the route's authentication, so the case reaches validation. */
  function authFor(route: RouteSpec): Record<string, string> {
    if (route.access === 'apiKey') return { 'x-api-key': apiKey() };
    if (ownerSessionRoutes.has(route)) return { authorization: `Bearer ${owner.token}` };
    return {};
  }

  const json = { 'content-type': 'application/json' };

  async function snapshot() {
    const collections = await api.deps.mongo.db!.listCollections().toArray();
    const counts: Record<string, number> = {};
    for (const { name } of collections) counts[name] = await api.deps.mongo.db!.collection(name).countDocuments();
    const redisKeys = (await api.deps.redis.keys('*')).filter((k) => !k.startsWith('rl:')).sort();
    // Workflows started since this file began, except runs a schedule left by an earlier file in this namespace started.
    const workflows: string[] = [];
    for await (const run of api.deps.temporal.workflow.list({ query: `StartTime >= "${started.toISOString()}"` })) {
      if (!run.searchAttributes.TemporalScheduledById) workflows.push(`${run.type} ${run.workflowId}`);
    }
    return { counts, redisKeys, workflows: workflows.sort() };
  }

  async function run(attempts: Attempt[]): Promise<string[]> {
    const documented = documentedCodes();
    const problems: string[] = [];
    const queue = [...attempts];
    const workers = Array.from({ length: 8 }, async () => {
      for (let attempt = queue.shift(); attempt; attempt = queue.shift()) {
        const res = await send(api.baseUrl, attempt);
        const where = `${attempt.route} [${attempt.name}] → ${res.status} ${res.text.slice(0, 300)}`;
        let body: { error?: { code?: unknown; message?: unknown; requestId?: unknown; details?: unknown } } = {};
        try {
          body = JSON.parse(res.text) as typeof body;
        } catch {
          problems.push(`${where}: not JSON`);
          continue;
        }
        const error = body.error;
        if (res.status < 400 || res.status > 499) problems.push(`${where}: status is not 4xx`);
        if (!error || typeof error.message !== 'string' || typeof error.requestId !== 'string') {
          problems.push(`${where}: not the error envelope`);
          continue;
        }
        const code = String(error.code);
        if (!(ERROR_CODES as readonly string[]).includes(code) || !documented.has(code)) problems.push(`${where}: undocumented code`);
        if (res.headers['x-request-id'] !== error.requestId) problems.push(`${where}: X-Request-Id differs from requestId`);
        const expected = attempt.expect;
        if (expected && (res.status !== expected.status || code !== expected.code))
          problems.push(`${where}: expected ${expected.status} ${expected.code}`);
        if (expected?.detailPath !== undefined) {
          const paths = Array.isArray(error.details) ? (error.details as { path: string; message: string }[]) : [];
          if (!paths.some((d) => d.path === expected.detailPath || d.message.includes(expected.detailPath!)))
            problems.push(`${where}: details do not name ${expected.detailPath}`);
        }
        if (expected?.reason !== undefined && (error.details as { reason?: string } | undefined)?.reason !== expected.reason)
          problems.push(`${where}: expected reason ${expected.reason}`);
      }
    });
    await Promise.all(workers);
    return problems;
  }

  beforeAll(async () => {
    api = await startTestApi({
      JSON_BODY_LIMIT: `${BODY_LIMIT_BYTES}b`,
      // Bulk uploads have a limit of their own; the oversize case exceeds both.
      BATCH_BODY_LIMIT: `${BODY_LIMIT_BYTES * 2}b`,
      WOC_NETWORK: 'test',
      PUBLIC_API_MAX: HIGH,
      ADMIN_API_MAX: HIGH,
      SVD_RATE_MAX_PER_IP: HIGH,
      SVD_RATE_MAX_PER_USER: HIGH,
      EMAIL_CODE_RATE_MAX_PER_IP: HIGH,
      EMAIL_CODE_RATE_MAX_PER_IDENTIFIER: HIGH,
    });
    routes = apiRoutes(api.deps);
    owner = await loggedInOwner(api.baseUrl, apiKey());

    // Owner-session routes are the ones that refuse a request without a bearer token before anything else.
    ownerSessionRoutes = new Set();
    for (const route of routes) {
      const res = await send(api.baseUrl, {
        route: label(route),
        name: 'probe',
        method: route.method,
        path: pathOf(route),
        headers: route.method === 'get' ? {} : json,
        ...(route.method !== 'get' && { body: '{}' }),
      });
      if (
        res.status === 401 &&
        (JSON.parse(res.text) as { error: { details?: { reason?: string } } }).error.details?.reason === 'missing_token'
      )
        ownerSessionRoutes.add(route);
    }
  }, 60_000);
  afterAll(() => api?.close());

  it('finds the routes it is meant to cover in the route table', () => {
    expect(routes.length).toBeGreaterThan(30);
    const paths = routes.map(label);
    expect(paths).toEqual(
      expect.arrayContaining(['POST /v1/admin/rotations/kms', 'POST /v1/patches/:uid/unlock', 'GET /v1/admin/emails/:messageId']),
    );
    // The transfer, unlock and address-binding routes need an SVD session.
    expect([...ownerSessionRoutes].map(label)).toEqual(
      expect.arrayContaining(['POST /v1/owner/addresses', 'POST /v1/patches/:uid/transfers', 'POST /v1/patches/:uid/unlock']),
    );
  });

  it('answers every bad request on every route with a documented 4xx envelope and writes nothing', async () => {
    const before = await snapshot();
    // The owner's login wrote its key and session: the snapshot sees real collections.
    expect(Object.values(before.counts).some((n) => n > 0)).toBe(true);
    const attempts: Attempt[] = [];
    const bodyTooBig = JSON.stringify({ pad: 'x'.repeat(BODY_LIMIT_BYTES * 4) });

    for (const route of routes) {
      const name = label(route);
      const auth = authFor(route);
      const at = pathOf(route);
      const body = schemaOf(route.request?.body);
      const base = body ? sampleBody(body) : {};
      const add = (caseName: string, init: Partial<Attempt>) =>
        attempts.push({ route: name, name: caseName, method: route.method, path: at, headers: auth, ...init });
      const withBody = (raw: string, headers: Record<string, string> = json) => ({ headers: { ...auth, ...headers }, body: raw });

      // The body parser and input guards run before any route: every route refuses these, whatever it expects.
      add('malformed JSON', { ...withBody('{"a":'), expect: { status: 400, code: 'MALFORMED_JSON' } });
      add('a JSON string body', { ...withBody('"text"'), expect: { status: 400, code: 'MALFORMED_JSON' } });
      add('a JSON number body', { ...withBody('42'), expect: { status: 400, code: 'MALFORMED_JSON' } });
      add('a body over the body limit', { ...withBody(bodyTooBig), expect: { status: 413, code: 'PAYLOAD_TOO_LARGE' } });
      add('a text/plain body', {
        ...withBody('a=1', { 'content-type': 'text/plain' }),
        expect: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
      });
      add('a form body', {
        ...withBody('a=1', { 'content-type': 'application/x-www-form-urlencoded' }),
        expect: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
      });
      for (const junk of ['$where=1', 'a.b=1', 'a[$gt]=', 'q=1&$ne=x'])
        add(`query ${junk}`, { path: `${at}?${junk}`, expect: { status: 400, code: 'NOSQL_OPERATOR_REJECTED' } });

      // A route's own query schema.
      const query = schemaOf(route.request?.query);
      for (const [field, fieldSchema] of Object.entries(query?.properties ?? {})) {
        if (fieldSchema.enum || fieldSchema.pattern)
          add(`query ${field}=junk`, {
            path: `${at}?${field}=%00junk`,
            expect: { status: 400, code: 'VALIDATION_FAILED', detailPath: field },
          });
        add(`query ${field} repeated`, { path: `${at}?${field}=a&${field}=b`, expect: { status: 400, code: 'VALIDATION_FAILED' } });
      }

      // Authentication.
      if (route.access === 'apiKey') {
        add('no API key', { headers: {}, expect: { status: 401, code: 'UNAUTHORIZED' } });
        add('a wrong API key', { headers: { 'x-api-key': `${apiKey()}-wrong` }, expect: { status: 401, code: 'UNAUTHORIZED' } });
        add('a wrong API key in Authorization', {
          headers: { authorization: 'ApiKey not-the-key' },
          expect: { status: 401, code: 'UNAUTHORIZED' },
        });
      }
      if (ownerSessionRoutes.has(route)) {
        const decoded = jwt.decode(owner.token, { complete: true })!;
        const payload = decoded.payload as jwt.JwtPayload;
        const forged = {
          garbage: 'garbage',
          'three garbage parts': 'aaa.bbb.ccc',
          'signed with another secret': jwt.sign(payload, 'not-the-server-secret-0123456789abcdef', {
            header: decoded.header,
          }),
          'alg none': `${Buffer.from(JSON.stringify({ ...decoded.header, alg: 'none' })).toString('base64url')}.${owner.token.split('.')[1]}.`,
          'payload of another user': [
            owner.token.split('.')[0],
            Buffer.from(JSON.stringify({ ...payload, sub: 'f'.repeat(24) })).toString('base64url'),
            owner.token.split('.')[2],
          ].join('.'),
          expired: jwt.sign({ ...payload, exp: Math.floor(Date.now() / 1000) - 60 }, 'not-the-server-secret-0123456789abcdef', {
            header: decoded.header,
          }),
        };
        for (const [kind, token] of Object.entries(forged))
          add(`a forged Bearer token (${kind})`, {
            headers: { ...json, authorization: `Bearer ${token}` },
            body: JSON.stringify(base),
            expect: { status: 401, code: 'UNAUTHORIZED' },
          });
        add('an API key instead of a session', {
          headers: { ...json, 'x-api-key': apiKey() },
          body: JSON.stringify(base),
          expect: { status: 401, code: 'UNAUTHORIZED', reason: 'missing_token' },
        });
      }

      // Path parameters, each on its own with the others valid. Params are validated before the body, but a route
      // whose param schema is loose may reach its body schema or its handler: any 4xx in the envelope then.
      const params = schemaOf(route.request?.params);
      for (const [param, paramSchema] of Object.entries(params?.properties ?? {})) {
        const bad: Record<string, string> = {
          $gt: '$gt',
          '[$gt]': encodeURIComponent('[$gt]'),
          '%00': '%00',
          '%00 suffix': `${encodeURIComponent(sampleString(paramSchema))}%00`,
          '5000 characters': 'a'.repeat(5000),
          'a dotted path': '..%2F..%2Fetc',
          'invalid percent-encoding': '%E0%A4%A',
        };
        if (expectsHex(paramSchema)) bad['non-hex'] = 'zz'.repeat(32);
        for (const [kind, value] of Object.entries(bad)) {
          const p = pathOf(route, (n) => (n === param ? value : encodeURIComponent(placeholder(route, n))));
          add(`param ${param} = ${kind}`, {
            path: p,
            ...(route.method === 'get' ? { headers: auth } : withBody(JSON.stringify(base))),
            ...(paramSchema.pattern || paramSchema.enum ? { expect: { status: 400, code: 'VALIDATION_FAILED' } } : {}),
          });
        }
      }

      // The route's body schema.
      if (body) {
        const sent = (value: unknown) => withBody(JSON.stringify(value));
        add('a JSON array body', { ...sent([base]), expect: { status: 400, code: 'VALIDATION_FAILED' } });
        add('null body', { ...sent(null), expect: { status: 400, code: 'MALFORMED_JSON' } });
        add('an unknown field', {
          ...sent({ ...base, surprise: 1 }),
          expect: { status: 400, code: 'VALIDATION_FAILED', detailPath: 'surprise' },
        });
        add('an operator key', { ...sent({ ...base, $where: 'sleep(1000)' }), expect: { status: 400, code: 'NOSQL_OPERATOR_REJECTED' } });
        add('a dotted key', { ...sent({ ...base, 'a.b': 1 }), expect: { status: 400, code: 'NOSQL_OPERATOR_REJECTED' } });
        for (const field of stringFields(body)) {
          const at = field.path.join('.');
          add(`${at} = {"$gt": ""}`, {
            ...sent(withValue(base, field.path, { $gt: '' })),
            expect: { status: 400, code: 'NOSQL_OPERATOR_REJECTED' },
          });
          add(`${at} = a number`, {
            ...sent(withValue(base, field.path, 12345)),
            expect: { status: 400, code: 'VALIDATION_FAILED', detailPath: at },
          });
          add(`${at} = an array`, {
            ...sent(withValue(base, field.path, ['a'])),
            expect: { status: 400, code: 'VALIDATION_FAILED', detailPath: at },
          });
          add(`${at} = 5000 characters`, {
            ...sent(withValue(base, field.path, 'a'.repeat(5000))),
            ...(field.schema.pattern || field.schema.enum || field.schema.maxLength !== undefined
              ? { expect: { status: 400, code: 'VALIDATION_FAILED', detailPath: at } }
              : {}),
          });
          if (field.schema.pattern || field.schema.enum) {
            add(`${at} = a NUL byte`, {
              ...sent(withValue(base, field.path, `${sampleString(field.schema)}\u0000`)),
              expect: { status: 400, code: 'VALIDATION_FAILED', detailPath: at },
            });
          }
          if (expectsHex(field.schema))
            add(`${at} = non-hex`, {
              ...sent(withValue(base, field.path, sampleString(field.schema).replace(/[0-9a-f]/gi, 'z'))),
              expect: { status: 400, code: 'VALIDATION_FAILED', detailPath: at },
            });
        }
      }
    }

    const problems = await run(attempts);
    expect(problems).toEqual([]);
    expect(attempts.length).toBeGreaterThan(500);
    if (process.env.PATCHPROOF_TEST_LOGS === '1') process.stderr.write(`${attempts.length} bad requests on ${routes.length} routes\n`);
    // Bad input wrote nothing: no documents, no keys beyond the limiter's counters, no workflows (given a moment to
    // become visible, had any been started).
    await new Promise((r) => setTimeout(r, 500));
    expect(await snapshot()).toEqual(before);
  }, 60_000);
});

import { OpenAPIRegistry, OpenApiGeneratorV3, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import type { Request, RequestHandler, Response, Router } from 'express';
import { z, type ZodType } from 'zod';
import { DomainError, ERROR_CODES } from '../src/errors';
import { requireScope, type RequiredScope } from './middleware/apiKey';
import { allLimits } from './middleware/rateLimit';

extendZodWithOpenApi(z);

/**
 * Routes are declared once, as data: the same declaration validates requests and generates the OpenAPI document,
 * so the spec cannot drift from the code.
 */

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
export type Access = 'public' | 'apiKey';

export interface ResponseSpec {
  description: string;
  schema?: ZodType;
  /** One media type, or several the route chooses between (by Accept or a query parameter), all with `schema`. */
  contentType?: string | string[];
}

export interface Validated<P, Q, B> {
  params: P;
  query: Q;
  body: B;
}

export interface RouteSpec<P extends ZodType = ZodType, Q extends ZodType = ZodType, B extends ZodType = ZodType> {
  method: Method;
  /** Express path syntax (`/v1/things/:id`). */
  path: string;
  summary: string;
  tags: string[];
  access: Access;
  /**
   * What an apiKey route's key must be allowed: a scope, or `operator` (an admin key of the default tenant) for the
   * platform's own operations. Default `operator`: a route says so when a brand's key may call it.
   */
  scope?: RequiredScope;
  /** Which limiter applies; 'none' for probes that orchestration polls (health, ready). */
  rateLimit: 'public' | 'admin' | 'none';
  /**
   * The longest the route may take to answer: past it, it answers 503 DEPENDENCY_UNAVAILABLE with Retry-After,
   * whatever it still waits for (the deadlines of its store calls bound that wait; this bounds their sum).
   */
  deadlineMs?: number;
  /** Further limiters of this route, run after `rateLimit` and before authentication (e.g. per user). */
  extraLimiters?: RequestHandler[];
  /**
   * The owner's SVD session check (`Authorization: Bearer <token>`), for owner routes. Declared here rather than as a
   * limiter so the document names the bearer scheme and its 401 wherever the server requires one.
   */
  ownerSession?: RequestHandler;
  /** `headers`: request headers the route requires or reads, checked here like params (unknown headers pass). */
  request?: { params?: P; query?: Q; body?: B; headers?: ZodType };
  /**
   * A body the route reads itself, after authentication, instead of through the app's JSON parser (a bulk upload
   * larger than the JSON limit, or NDJSON). Documented with `schema`; the route validates it in parts.
   */
  ownBody?: { parser: RequestHandler; schema: ZodType; contentTypes: string[] };
  responses: Record<number, ResponseSpec>;
  handler: (input: Validated<z.infer<P>, z.infer<Q>, z.infer<B>>, req: Request, res: Response) => Promise<void> | void;
}

export function defineRoute<P extends ZodType = ZodType, Q extends ZodType = ZodType, B extends ZodType = ZodType>(
  spec: RouteSpec<P, Q, B>,
): RouteSpec {
  return spec;
}

export const ErrorEnvelopeSchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      details: z.unknown().optional(),
      requestId: z.string().optional(),
    }),
  })
  .openapi('ErrorEnvelope');

export interface MountOptions {
  requireApiKey: RequestHandler;
  /** `perKey`: each API key's own request limit, after authentication. */
  limiters: { public: RequestHandler; admin: RequestHandler; perKey?: RequestHandler };
}

/** Adds each route to the router with, in order: its limiter, authentication, validation, then the handler. */
export function mountRoutes(router: Router, routes: RouteSpec[], options: MountOptions): void {
  for (const route of routes) {
    const chain: RequestHandler[] = [];
    if (route.deadlineMs !== undefined) chain.push(answerBy(route.deadlineMs));
    const limiters = [...(route.rateLimit !== 'none' ? [options.limiters[route.rateLimit]] : []), ...(route.extraLimiters ?? [])];
    if (limiters.length > 0) chain.push(allLimits(limiters));
    if (route.ownerSession) chain.push(route.ownerSession);
    if (route.access === 'apiKey') {
      chain.push(options.requireApiKey, requireScope(route.scope ?? 'operator'));
      if (options.limiters.perKey) chain.push(options.limiters.perKey);
    }
    if (route.ownBody) chain.push(route.ownBody.parser);
    chain.push(async (req, res) => {
      // A declared body is required: no body at all is a 400, never the defaults of an all-optional schema.
      if (route.request?.body && req.body === undefined)
        throw new DomainError('VALIDATION_FAILED', 'This route needs a JSON body; send {} to take every default.');
      if (route.request?.headers) route.request.headers.parse(req.headers);
      const input = {
        params: route.request?.params ? route.request.params.parse(req.params) : {},
        query: route.request?.query ? route.request.query.parse(req.query) : {},
        body: route.request?.body ? route.request.body.parse(req.body) : undefined,
      };
      await route.handler(input, req, res);
    });
    router[route.method](route.path, ...chain);
  }
}

/** Answers 503 once `deadlineMs` have passed since the request arrived (body parsing and limiters count too). */
function answerBy(deadlineMs: number): RequestHandler {
  return (_req, res, next) => {
    const arrivedAt = res.locals.arrivedAt as bigint | undefined;
    const spentMs = arrivedAt === undefined ? 0 : Number(process.hrtime.bigint() - arrivedAt) / 1e6;
    const timer = setTimeout(
      () => {
        if (!res.headersSent)
          next(new DomainError('DEPENDENCY_UNAVAILABLE', 'A service this request needs did not answer in time; retry later.'));
      },
      Math.max(0, deadlineMs - spentMs),
    );
    res.once('close', () => clearTimeout(timer));
    next();
  };
}

/**
 * 405 with `Allow` for a path the API serves under other methods (HEAD goes with GET), matched the way Express
 * matches (case-insensitive, optional trailing slash); any other path falls through to the 404.
 */
export function methodNotAllowed(routes: RouteSpec[]): RequestHandler {
  const served = routes.map((route) => ({
    method: route.method.toUpperCase(),
    path: new RegExp(`^${route.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+')}/?$`, 'i'),
  }));
  return (req, res, next) => {
    const allowed = new Set(served.filter((route) => route.path.test(req.path)).map((route) => route.method));
    if (allowed.size === 0) return next();
    if (allowed.has('GET')) allowed.add('HEAD');
    const allow = [...allowed].join(', ');
    res.setHeader('Allow', allow);
    next(new DomainError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}; use ${allow}.`));
  };
}

/** True for a request to a route that reads its own body: the app's JSON parser and its content-type check skip it. */
export function readsOwnBody(routes: RouteSpec[], req: Request): boolean {
  return routes.some((r) => r.ownBody && r.method === req.method.toLowerCase() && r.path === req.path);
}

function scopeText(scope: RequiredScope | undefined): string {
  return (scope ?? 'operator') === 'operator' ? 'the operator role (scope `admin`, default tenant)' : `scope \`${scope}\` (or \`admin\`)`;
}

/** Builds the OpenAPI 3 document for the given routes. */
export function buildOpenApiDocument(routes: RouteSpec[], info: { version: string; serverUrl?: string }) {
  const registry = new OpenAPIRegistry();
  registry.register('ErrorEnvelope', ErrorEnvelopeSchema);
  const apiKeyScheme = registry.registerComponent('securitySchemes', 'ApiKeyAuth', {
    type: 'apiKey',
    in: 'header',
    name: 'x-api-key',
    description:
      'An API key `pp_live_<id>_<secret>` or `pp_test_<id>_<secret>` (patchproof api-keys create); its scopes and tenant decide what it may do.',
  });
  const ownerScheme = registry.registerComponent('securitySchemes', 'OwnerSession', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An SVD session token (POST /api/svd/complete); email-verified tokens are refused on owner routes.',
  });
  const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ErrorEnvelopeSchema } } });

  for (const route of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      const types = [response.contentType ?? 'application/json'].flat();
      responses[status] = response.schema
        ? { description: response.description, content: Object.fromEntries(types.map((type) => [type, { schema: response.schema }])) }
        : { description: response.description };
    }
    if (route.request?.body || route.ownBody || route.request?.params || route.request?.query || route.request?.headers)
      responses['400'] ??= errorResponse('Invalid request.');
    if (route.access === 'apiKey') {
      responses['401'] ??= errorResponse('Missing, unknown, revoked or expired API key.');
      responses['403'] ??= errorResponse(`The API key lacks ${scopeText(route.scope)}.`);
    }
    if (route.ownerSession) responses['401'] ??= errorResponse('Missing, expired or revoked SVD session bearer token.');
    if (route.rateLimit !== 'none') responses['429'] ??= errorResponse('Rate limited; see Retry-After.');

    registry.registerPath({
      method: route.method,
      path: route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}'),
      summary: route.summary,
      tags: route.tags,
      ...((route.access === 'apiKey' || route.ownerSession) && {
        ...(route.access === 'apiKey' && { description: `Requires an API key with ${scopeText(route.scope)}.` }),
        security: [
          {
            ...(route.access === 'apiKey' && { [apiKeyScheme.name]: [] }),
            ...(route.ownerSession && { [ownerScheme.name]: [] }),
          },
        ],
      }),
      request: {
        ...(route.request?.params && { params: route.request.params as never }),
        ...(route.request?.query && { query: route.request.query as never }),
        ...(route.request?.headers && { headers: route.request.headers as never }),
        ...(route.request?.body && { body: { required: true, content: { 'application/json': { schema: route.request.body } } } }),
        ...(route.ownBody && {
          body: {
            required: true,
            content: Object.fromEntries(route.ownBody.contentTypes.map((type) => [type, { schema: route.ownBody!.schema }])),
          },
        }),
      },
      responses: responses as never,
    });
  }

  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: {
      title: 'PatchProof API',
      version: info.version,
      description: 'Authenticates physical goods on the BSV blockchain. Every error uses the ErrorEnvelope shape.',
    },
    ...(info.serverUrl && { servers: [{ url: info.serverUrl }] }),
  });
}

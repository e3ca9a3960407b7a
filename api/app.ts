import express, { type Express } from 'express';
import helmet from 'helmet';
import swaggerUi from 'swagger-ui-express';
import { chainClientsFromConfig } from '../src/chain/clients';
import { createPoolHealth } from '../src/pool/health';
import { keyringFromConfig } from '../src/rotation/keyring';
import { errorHandler, notFoundHandler } from './errors';
import { apiKeyAuthenticatorFor, principalOf, requireApiKey } from './middleware/apiKey';
import { corsAllowlist, rejectMongoOperators, requireJsonBody } from './middleware/inputGuards';
import { createRateLimiter } from './middleware/rateLimit';
import { requestContext } from './middleware/requestContext';
import { createReadinessCheck } from './readiness';
import { certificateRoutes } from './routes/certificate';
import { healthRoutes } from './routes/health';
import { issuerKeyRoutes } from './routes/issuerKeys';
import { poolRoutes } from './routes/pool';
import { rotationRoutes } from './routes/rotation';
import { createOwnerSessionServices, ownerAuthRoutes } from './routes/ownerAuth';
import { transferRoutes } from './routes/transfers';
import { claimRoutes } from './routes/claims';
import { unlockRoutes } from './routes/unlock';
import { requireOwnerSession } from './middleware/ownerSession';
import { patchRoutes } from './routes/patches';
import { patchPageRoutes, type PatchPageDeps } from './routes/patchPage';
import { ImageProxy } from '../src/patchPage/imageProxy';
import { systemCheckRoutes } from './routes/systemChecks';
import { patchBatchRoutes } from './routes/patchBatches';
import { patchListingRoutes } from './routes/patchListing';
import { apiKeyRoutes } from './routes/apiKeys';
import { webhookRoutes } from './routes/webhooks';
import { registrationQueue } from '../src/registration/queue';
import { buildOpenApiDocument, methodNotAllowed, mountRoutes, readsOwnBody, type RouteSpec } from './routing';
import { attributedCalls } from '../src/woc/client';
import type { AppDeps } from './deps';

export type { AppDeps };

export const API_VERSION = '0.1.0';

/** Every route of the API, as declarations; used to mount them and to generate the OpenAPI document. */
export function apiRoutes(deps: AppDeps): RouteSpec[] {
  const chain = chainClientsFromConfig(deps.config, deps.logger, deps.metrics);
  const keys = keyringFromConfig(deps.config, deps.mongo);
  const ownerServices = createOwnerSessionServices(deps, keys);
  const ownerSession = requireOwnerSession(ownerServices);
  const queue = registrationQueue(deps.mongo, deps.config.anchoring.queueLimit);
  const page: PatchPageDeps = {
    explorerTxUrl: deps.config.patchPage.explorerTxUrl,
    images: new ImageProxy(deps.config.patchPage.image),
    ...(deps.config.http.publicBaseUrl && { publicBaseUrl: deps.config.http.publicBaseUrl }),
  };
  return [
    ...healthRoutes({
      checkReadiness: createReadinessCheck(deps),
      metrics: deps.metrics,
      metricsRequireApiKey: deps.config.http.metricsRequireApiKey,
      deploySha: deps.config.deploySha,
      retryAfterSeconds: dependencyRetryAfterSeconds(deps.config),
    }),
    ...systemCheckRoutes({ temporal: deps.temporal, mongo: deps.mongo, metrics: deps.metrics }),
    ...poolRoutes({
      temporal: deps.temporal,
      mongo: deps.mongo,
      metrics: deps.metrics,
      pool: deps.config.pool,
      network: chain.network,
      health: createPoolHealth({
        ...chain,
        mongo: deps.mongo,
        temporal: deps.temporal,
        pool: deps.config.pool,
        metrics: deps.metrics,
        keys,
      }),
    }),
    ...ownerAuthRoutes(deps, ownerServices),
    ...rotationRoutes({ temporal: deps.temporal, mongo: deps.mongo, metrics: deps.metrics, config: deps.config }),
    ...issuerKeyRoutes({ temporal: deps.temporal, metrics: deps.metrics, config: deps.config, keys, kms: chain.kms }),
    ...transferRoutes({
      temporal: deps.temporal,
      mongo: deps.mongo,
      metrics: deps.metrics,
      network: chain.network,
      ownerSession,
    }),
    ...unlockRoutes({
      mongo: deps.mongo,
      redis: deps.redis,
      network: chain.network,
      ownerSession,
      unlockContentSecret: deps.config.unlock.contentSecret,
    }),
    ...claimRoutes({
      temporal: deps.temporal,
      mongo: deps.mongo,
      metrics: deps.metrics,
      network: chain.network,
      intentTtlMs: deps.config.claims.intentTtlMs,
    }),
    ...patchRoutes({
      temporal: deps.temporal,
      mongo: deps.mongo,
      metrics: deps.metrics,
      network: chain.network,
      kms: chain.kms,
      woc: attributedCalls(chain.woc, (operation) => deps.metrics.chainRequestsByCaller.inc({ caller: 'verify', operation })),
      keys,
      anchorConfirmations: deps.config.anchoring.confirmations,
      deadlineMs: deps.config.deadlines.requestMs,
      unlockContentSecret: deps.config.unlock.contentSecret,
      queue,
      verdicts: deps.verdicts,
      page,
      taps: {
        kms: chain.kms,
        logger: deps.logger,
        settings: {
          keyIdentifier: deps.config.tags.keyIdentifier,
          macInput: deps.config.tags.macInput,
          piccDataParam: deps.config.tags.piccDataParam,
          cmacParam: deps.config.tags.cmacParam,
        },
        ipHashKey: deps.config.tags.ipHashKey,
      },
      redis: deps.redis,
      registrationsPerDay: deps.config.apiKeys.registrationsPerDay,
    }),
    ...patchListingRoutes({
      mongo: deps.mongo,
      streamingMongo: deps.streamingMongo ?? deps.mongo,
      logger: deps.logger,
      maxConcurrentExports: deps.config.apiKeys.maxConcurrentExports,
    }),
    ...apiKeyRoutes({
      mongo: deps.mongo,
      authenticator: apiKeyAuthenticatorFor(deps),
      rotationOverlapMs: deps.config.apiKeys.rotationOverlapMs,
      temporal: deps.temporal,
      webhookRetry: deps.config.webhooks.retry,
      logger: deps.logger,
    }),
    ...webhookRoutes({ mongo: deps.mongo, temporal: deps.temporal, config: deps.config, starts: deps.metrics }),
    ...patchPageRoutes({ ...page, mongo: deps.mongo }),
    ...patchBatchRoutes({
      temporal: deps.temporal,
      mongo: deps.mongo,
      metrics: deps.metrics,
      network: chain.network,
      unlockContentSecret: deps.config.unlock.contentSecret,
      batchBodyLimit: deps.config.http.batchBodyLimit,
      batchMaxItems: deps.config.http.batchMaxItems,
      batchMaxConcurrent: deps.config.http.batchMaxConcurrent,
      queue,
      redis: deps.redis,
      registrationsPerDay: deps.config.apiKeys.registrationsPerDay,
    }),
    ...certificateRoutes({
      ...chain,
      woc: attributedCalls(chain.woc, (operation) => deps.metrics.chainRequestsByCaller.inc({ caller: 'certificate', operation })),
      mongo: deps.mongo,
      keys,
      requiredConfirmations: deps.config.anchoring.confirmations,
      page,
    }),
  ];
}

/** What a 503 for an unavailable or stalled dependency tells the client to wait: about one open circuit. */
const dependencyRetryAfterSeconds = (config: AppDeps['config']) => Math.max(1, Math.ceil(config.deadlines.circuitOpenMs / 1000));

export function createApp(deps: AppDeps): Express {
  const { config, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.http.trustProxy);
  app.set('query parser', 'simple');

  app.use(requestContext({ logger, metrics, accessLog: config.log.accessLog }));
  app.use(helmet());
  app.use(corsAllowlist({ allowedOrigins: config.http.corsAllowedOrigins, isProduction: config.isProduction }));
  const routes = apiRoutes(deps);
  const jsonBody = express.json({ limit: config.http.jsonBodyLimit, strict: true, type: ['application/json', 'application/*+json'] });
  app.use((req, res, next) => (readsOwnBody(routes, req) ? next() : requireJsonBody(req, res, next)));
  app.use((req, res, next) => (readsOwnBody(routes, req) ? next() : jsonBody(req, res, next)));
  app.use(rejectMongoOperators);

  const openApiDocument = buildOpenApiDocument(routes, {
    version: API_VERSION,
    ...(config.http.publicBaseUrl && { serverUrl: config.http.publicBaseUrl }),
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  if (config.http.swaggerDocs) {
    // Swagger UI needs inline scripts and styles, which helmet's default CSP forbids; relax it for /docs only.
    app.use('/docs', helmet({ contentSecurityPolicy: false }), swaggerUi.serve, swaggerUi.setup(openApiDocument));
  }

  const rateLimitCommon = { redis: deps.redis, logger, timeoutMs: config.deadlines.rateLimitMs };
  const limiters = {
    public: createRateLimiter({ name: 'public', ...rateLimitCommon, ...config.http.rateLimits.public, metrics, failOpen: true }),
    admin: createRateLimiter({ name: 'admin', ...rateLimitCommon, ...config.http.rateLimits.admin, metrics, failOpen: true }),
    // Each key's own budget, so one integrator's burst cannot use up another's.
    perKey: createRateLimiter({
      name: 'key',
      ...rateLimitCommon,
      ...config.apiKeys.rateLimit,
      metrics,
      failOpen: true,
      keyGenerator: (_req) => principalOf(_req.res!).keyId,
      limitFor: (req) => principalOf(req.res!).rateLimitMax ?? config.apiKeys.rateLimit.max,
    }),
  };
  const router = express.Router();
  mountRoutes(router, routes, { requireApiKey: requireApiKey({ authenticator: apiKeyAuthenticatorFor(deps), logger }), limiters });
  app.use(router);

  app.use(methodNotAllowed(routes));
  app.use(notFoundHandler);
  app.use(errorHandler(logger, { dependencyRetryAfterSeconds: dependencyRetryAfterSeconds(config) }));
  return app;
}

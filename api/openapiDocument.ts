import { loadConfig } from '../src/config';
import { createMetrics } from '../src/metrics';
import { API_VERSION, apiRoutes } from './app';
import type { AppDeps } from './deps';
import { buildOpenApiDocument } from './routing';

/**
 * The OpenAPI document as published in docs/openapi.json. Route declarations only use their dependencies when a
 * request is handled, so unconnected placeholders are enough to describe them.
 */
export function openApiDocumentForDocs() {
  // No verdict cache: it would subscribe to Redis, and describing the routes needs no connection.
  const config = loadConfig({ NODE_ENV: 'development', METRICS_REQUIRE_API_KEY: 'true' });
  const unconnected = {} as AppDeps['mongo'] & AppDeps['redis'] & AppDeps['temporal'];
  const deps: AppDeps = {
    config,
    logger: undefined as unknown as AppDeps['logger'],
    metrics: createMetrics({ service: 'docs', deploySha: 'docs' }),
    mongo: unconnected,
    redis: unconnected,
    temporal: unconnected,
  };
  return buildOpenApiDocument(apiRoutes(deps), { version: API_VERSION });
}

import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { TENANT_ID_PATTERN } from '../../src/tenancy/apiKeys';
import {
  createWebhookEndpoint,
  findWebhookDelivery,
  findWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  removeWebhookEndpoint,
  rotateWebhookSecret,
  type WebhookDeliveryView,
  type WebhookEndpointView,
} from '../../src/webhooks/endpoints';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../../src/webhooks/events';
import { WEBHOOK_DELIVERY_ID_PATTERN, WEBHOOK_ENDPOINT_ID_PATTERN } from '../../src/webhooks/ids';
import { startWebhookRedelivery } from '../../src/webhooks/launch';
import { systemResolver } from '../../src/webhooks/resolver';
import { resolveWebhookTarget, WebhookTargetRefused } from '../../src/webhooks/ssrfGuard';
import { CliFailure, connectTemporal, EXIT, output, type CliContext, withMongo } from './common';

function tenant(value: string | undefined): string | undefined {
  if (value !== undefined && !TENANT_ID_PATTERN.test(value)) throw new CliFailure('--tenant: lower-case letters, digits and -', EXIT.usage);
  return value;
}

function endpointId(id: string): string {
  if (!WEBHOOK_ENDPOINT_ID_PATTERN.test(id))
    throw new CliFailure('<endpointId>: we_ and 16 hex digits (patchproof webhooks list)', EXIT.usage);
  return id;
}

function parseEvents(list: string): WebhookEventType[] {
  const events = list.split(',').map((s) => s.trim());
  const unknown = events.filter((e) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(e));
  if (unknown.length > 0 || events.length === 0)
    throw new CliFailure(`--events: comma-separated, among ${WEBHOOK_EVENT_TYPES.join(', ')}`, EXIT.usage);
  return events as WebhookEventType[];
}

function describeEndpoint(e: WebhookEndpointView): string {
  return [
    `${e.id}  ${e.removedAt ? 'REMOVED' : 'ACTIVE '} tenant=${e.tenantId} ${e.url}`,
    `    events ${e.events.join(',')}; secrets signing ${e.activeSecrets}${e.previousSecretExpiresAt ? ` (previous until ${e.previousSecretExpiresAt})` : ''}; created ${e.createdAt} by ${e.createdBy}`,
  ].join('\n');
}

function describeDelivery(d: WebhookDeliveryView): string {
  const last = d.attempts.at(-1);
  return [
    `${d.id}  ${d.status.toUpperCase().padEnd(9)} ${d.eventType} ${d.eventId}${d.redeliveryOf ? ` (redelivery of ${d.redeliveryOf})` : ''}`,
    `    ${d.attempts.length} attempt(s)${last ? `; last ${last.at} status=${last.statusCode ?? '-'} ${last.durationMs} ms${last.errorClass ? ` error=${last.errorClass}` : ''}` : ''}`,
  ].join('\n');
}

/**
 * `patchproof webhooks …`: tenants' webhook endpoints and their delivery logs, on MongoDB directly (redelivery
 * through Temporal). Without --tenant, list and the per-endpoint commands act on any tenant (operator).
 */
export function registerWebhookCommands(program: Command, context: CliContext): void {
  const webhooks = program
    .command('webhooks')
    .description("Tenants' webhook endpoints: add, list, remove, rotate-secret, deliveries, redeliver.");

  webhooks
    .command('add')
    .description('Register an endpoint and print its signing secret once.')
    .requiredOption('--tenant <id>', 'the tenant (brand) whose events it receives')
    .requiredOption('--url <url>', 'https URL (http to loopback only with WEBHOOK_ALLOW_LOOPBACK_HTTP=true, never in production)')
    .requiredOption('--events <list>', `comma-separated: ${WEBHOOK_EVENT_TYPES.join(', ')}`)
    .option('--description <text>', 'what it is for')
    .action((options: { tenant: string; url: string; events: string; description?: string }) =>
      context.withConfig(async (config) => {
        const tenantId = tenant(options.tenant)!;
        const events = parseEvents(options.events);
        try {
          await resolveWebhookTarget(
            options.url,
            { allowLoopbackHttp: config.webhooks.allowLoopbackHttp },
            systemResolver(config.webhooks.timeoutMs),
          );
        } catch (err) {
          if (err instanceof WebhookTargetRefused) throw new CliFailure(`--url refused: ${err.message}`, EXIT.usage);
          throw err;
        }
        const created = await withMongo(config, (mongo) =>
          createWebhookEndpoint(mongo, {
            tenantId,
            url: options.url,
            events,
            ...(options.description && { description: options.description }),
            createdBy: `cli:${userInfo().username}`,
          }),
        );
        output(context.json()).result(
          created,
          `${created.secret}\n\nShown once: give it to the receiver now.\n${describeEndpoint(created.endpoint)}`,
        );
        return EXIT.ok;
      }),
    );

  webhooks
    .command('list')
    .description('Endpoints (removed ones too); never a secret.')
    .option('--tenant <id>', 'one tenant only')
    .action((options: { tenant?: string }) =>
      context.withConfig(async (config) => {
        const endpoints = await withMongo(config, (mongo) => listWebhookEndpoints(mongo, tenant(options.tenant)));
        output(context.json()).result(
          { endpoints },
          endpoints.length ? endpoints.map(describeEndpoint).join('\n') : 'no webhook endpoints',
        );
        return EXIT.ok;
      }),
    );

  webhooks
    .command('remove')
    .description('Stop deliveries to an endpoint (its log stays).')
    .argument('<endpointId>')
    .option('--tenant <id>', 'refuse unless the endpoint is this tenant’s')
    .action((id: string, options: { tenant?: string }) =>
      context.withConfig(async (config) => {
        const removed = await withMongo(config, (mongo) => removeWebhookEndpoint(mongo, endpointId(id), tenant(options.tenant)));
        if (!removed) throw new CliFailure(`no webhook endpoint ${id}`, EXIT.problem);
        output(context.json()).result(removed, describeEndpoint(removed));
        return EXIT.ok;
      }),
    );

  webhooks
    .command('rotate-secret')
    .description('A new signing secret (printed once); the previous one keeps signing for WEBHOOK_SECRET_OVERLAP_HOURS.')
    .argument('<endpointId>')
    .option('--tenant <id>', 'refuse unless the endpoint is this tenant’s')
    .action((id: string, options: { tenant?: string }) =>
      context.withConfig(async (config) => {
        const rotated = await withMongo(config, (mongo) =>
          rotateWebhookSecret(mongo, endpointId(id), tenant(options.tenant), config.webhooks.secretOverlapMs),
        );
        if (!rotated) throw new CliFailure(`no active webhook endpoint ${id}`, EXIT.problem);
        output(context.json()).result(rotated, `${rotated.secret}\n\nShown once.\n${describeEndpoint(rotated.endpoint)}`);
        return EXIT.ok;
      }),
    );

  webhooks
    .command('deliveries')
    .description("An endpoint's delivery log, newest first.")
    .argument('<endpointId>')
    .option('--tenant <id>', 'refuse unless the endpoint is this tenant’s')
    .option('--limit <n>', 'how many', '20')
    .action((id: string, options: { tenant?: string; limit: string }) =>
      context.withConfig(async (config) => {
        const limit = Number(options.limit);
        if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new CliFailure('--limit: 1 to 1000', EXIT.usage);
        const deliveries = await withMongo(config, async (mongo) => {
          if (!(await findWebhookEndpoint(mongo, endpointId(id), tenant(options.tenant))))
            throw new CliFailure(`no webhook endpoint ${id}`, EXIT.problem);
          return listWebhookDeliveries(mongo, id, limit);
        });
        output(context.json()).result({ deliveries }, deliveries.length ? deliveries.map(describeDelivery).join('\n') : 'no deliveries');
        return EXIT.ok;
      }),
    );

  webhooks
    .command('redeliver')
    .description('Send a logged delivery’s event again to its endpoint (a new delivery with its own retries).')
    .argument('<deliveryId>')
    .option('--tenant <id>', 'refuse unless the delivery is this tenant’s')
    .action((id: string, options: { tenant?: string }) =>
      context.withConfig(async (config) => {
        if (!WEBHOOK_DELIVERY_ID_PATTERN.test(id))
          throw new CliFailure('<deliveryId>: as patchproof webhooks deliveries prints it', EXIT.usage);
        const started = await withMongo(config, async (mongo) => {
          const delivery = await findWebhookDelivery(mongo, id, tenant(options.tenant));
          if (!delivery) throw new CliFailure(`no webhook delivery ${id}`, EXIT.problem);
          const endpoint = await findWebhookEndpoint(mongo, delivery.endpointId, undefined);
          if (!endpoint || endpoint.removedAt) throw new CliFailure(`the endpoint ${delivery.endpointId} was removed`, EXIT.problem);
          const temporal = await connectTemporal(config);
          try {
            const launched = await startWebhookRedelivery(
              { mongo, temporal, retry: config.webhooks.retry },
              endpoint,
              delivery.eventId,
              delivery._id,
            );
            return { ...launched, endpointId: endpoint._id };
          } finally {
            await temporal.connection.close();
          }
        });
        output(context.json()).result(
          { deliveryId: started.workflowId, redeliveryOf: id },
          `redelivery ${started.workflowId} started (patchproof webhooks deliveries ${started.endpointId} shows it)`,
        );
        return EXIT.ok;
      }),
    );
}

import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Connection } from 'mongoose';
import type { AppConfig } from '../../src/config';
import { API_KEY_ID_PATTERN, API_KEY_SCOPES, TENANT_ID_PATTERN, type ApiKeyScope } from '../../src/tenancy/apiKeys';
import { createApiKey, listApiKeys, revokeApiKey, rotateApiKey, type ApiKeyView } from '../../src/tenancy/keyStore';
import { CliFailure, connectTemporal, EXIT, output, type CliContext, withMongo } from './common';
import { emitKeyRevoked } from '../../src/webhooks/launch';

function describeKey(key: ApiKeyView): string {
  return [
    `${key.id}  ${key.state.toUpperCase().padEnd(7)} tenant=${key.tenantId} mode=${key.mode} name=${JSON.stringify(key.name)}`,
    `    scopes ${key.scopes.join(',')}; created ${key.createdAt} by ${key.createdBy}; last used ${key.lastUsedAt ?? 'never'}`,
    ...(key.expiresAt ? [`    expires ${key.expiresAt}${key.rotatedTo ? ` (rotated to ${key.rotatedTo})` : ''}`] : []),
    ...(key.revokedAt ? [`    revoked ${key.revokedAt}`] : []),
  ].join('\n');
}

function parseScopes(list: string): ApiKeyScope[] {
  const scopes = list.split(',').map((s) => s.trim());
  const unknown = scopes.filter((s) => !(API_KEY_SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0 || scopes.length === 0) {
    throw new CliFailure(`--scopes: comma-separated, among ${API_KEY_SCOPES.join(', ')}`, EXIT.usage);
  }
  return scopes as ApiKeyScope[];
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new CliFailure(`${name}: a positive whole number`, EXIT.usage);
  return n;
}

function keyId(id: string): string {
  if (!API_KEY_ID_PATTERN.test(id))
    throw new CliFailure('<keyId>: the 16 hex digits after pp_live_/pp_test_ (patchproof api-keys list)', EXIT.usage);
  return id;
}

/** The `key.revoked` webhook event; the revocation stands even when Temporal is out of reach (said on stderr). */
async function emitRevocation(config: AppConfig, mongo: Connection, view: ApiKeyView): Promise<void> {
  const warn = (err: unknown) => process.stderr.write(`warning: key.revoked webhook not emitted: ${(err as Error).message}\n`);
  const temporal = await connectTemporal(config).catch((err: unknown) => {
    warn(err);
    return null;
  });
  if (!temporal) return;
  try {
    await emitKeyRevoked({ mongo, temporal, retry: config.webhooks.retry }, view, warn);
  } finally {
    await temporal.connection.close();
  }
}

const cliActor = () => `cli:${userInfo().username}`;

/**
 * `patchproof api-keys …`: the tenants' API keys (`patchproof keys` is the issuer keys'). Works on MongoDB directly;
 * API processes honour a revocation within API_KEY_CACHE_MS.
 */
export function registerApiKeyCommands(program: Command, context: CliContext): void {
  const apiKeys = program
    .command('api-keys')
    .description("Tenants' API keys: create, list, revoke, rotate (the issuer keys are `patchproof keys`).");

  apiKeys
    .command('create')
    .description('Create an API key and print it once (it is stored only as a SHA-256 hash).')
    .requiredOption('--tenant <id>', 'the tenant (brand) it acts for: lower-case letters, digits and -')
    .requiredOption('--name <text>', 'what it is for, e.g. "acme ERP"')
    .requiredOption('--scopes <list>', `comma-separated: ${API_KEY_SCOPES.join(', ')}`)
    .option('--test', 'a pp_test_ key instead of pp_live_', false)
    .option('--expires-at <time>', 'when it stops working (ISO 8601); default never')
    .option('--rate-limit <n>', 'requests per API_KEY_RATE_WINDOW_MS; default API_KEY_RATE_MAX')
    .option('--registrations-per-day <n>', 'registrations per UTC day; default API_KEY_REGISTRATIONS_PER_DAY')
    .action(
      (options: {
        tenant: string;
        name: string;
        scopes: string;
        test: boolean;
        expiresAt?: string;
        rateLimit?: string;
        registrationsPerDay?: string;
      }) =>
        context.withConfig(async (config) => {
          if (!TENANT_ID_PATTERN.test(options.tenant))
            throw new CliFailure('--tenant: lower-case letters, digits and - (up to 63)', EXIT.usage);
          const expiresAt = options.expiresAt === undefined ? null : new Date(options.expiresAt);
          if (expiresAt && Number.isNaN(expiresAt.getTime())) throw new CliFailure('--expires-at: an ISO 8601 time', EXIT.usage);
          const input = {
            tenantId: options.tenant,
            name: options.name.trim(),
            scopes: parseScopes(options.scopes),
            mode: options.test ? ('test' as const) : ('live' as const),
            createdBy: cliActor(),
            expiresAt,
            rateLimitMax: positiveInt('--rate-limit', options.rateLimit) ?? null,
            registrationsPerDay: positiveInt('--registrations-per-day', options.registrationsPerDay) ?? null,
          };
          const created = await withMongo(config, (mongo) => createApiKey(mongo, input));
          output(context.json()).result(
            { key: created.key, apiKey: created.view },
            `${created.key}\n\nShown once: store it now. Key id ${created.view.id} (tenant ${created.view.tenantId}).`,
          );
          return EXIT.ok;
        }),
    );

  apiKeys
    .command('list')
    .description("List API keys (never their secrets): all, or one tenant's.")
    .option('--tenant <id>', 'only this tenant')
    .action((options: { tenant?: string }) =>
      context.withConfig(async (config) => {
        const keys = await withMongo(config, (mongo) => listApiKeys(mongo, options.tenant));
        output(context.json()).result(keys, keys.length === 0 ? '(no API keys)' : keys.map(describeKey).join('\n'));
        return EXIT.ok;
      }),
    );

  apiKeys
    .command('revoke')
    .description('Revoke an API key now; API processes refuse it within API_KEY_CACHE_MS.')
    .argument('<keyId>', 'the key id (patchproof api-keys list)')
    .action((id: string) =>
      context.withConfig(async (config) => {
        const revoked = await withMongo(config, async (mongo) => {
          const view = await revokeApiKey(mongo, keyId(id), cliActor());
          if (view) await emitRevocation(config, mongo, view);
          return view;
        });
        if (!revoked) throw new CliFailure(`no API key ${id}`, EXIT.problem);
        output(context.json()).result(revoked, describeKey(revoked));
        return EXIT.ok;
      }),
    );

  apiKeys
    .command('rotate')
    .description('Issue a replacement key (printed once); the old key keeps working for the overlap window, then expires.')
    .argument('<keyId>', 'the key id (patchproof api-keys list)')
    .option('--overlap-hours <n>', 'how long the old key keeps working; default API_KEY_ROTATION_OVERLAP_HOURS (24)')
    .action((id: string, options: { overlapHours?: string }) =>
      context.withConfig(async (config) => {
        const hours = options.overlapHours === undefined ? undefined : Number(options.overlapHours);
        if (hours !== undefined && !(hours >= 0 && hours <= 720)) throw new CliFailure('--overlap-hours: 0–720', EXIT.usage);
        const overlapMs = hours === undefined ? config.apiKeys.rotationOverlapMs : hours * 3_600_000;
        const rotated = await withMongo(config, (mongo) => rotateApiKey(mongo, keyId(id), { overlapMs, createdBy: cliActor() }));
        if (!rotated) throw new CliFailure(`no active API key ${id}`, EXIT.problem);
        output(context.json()).result(
          { key: rotated.key, apiKey: rotated.view, previous: rotated.old },
          `${rotated.key}\n\nShown once: store it now. New key id ${rotated.view.id}; ${rotated.old.id} expires ${rotated.old.expiresAt}.`,
        );
        return EXIT.ok;
      }),
    );
}

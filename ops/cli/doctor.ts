import type { Command } from 'commander';
import { ScheduleNotFoundError, type Client, type Connection, type ScheduleDescription, type ScheduleOptions } from '@temporalio/client';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Redis } from 'ioredis';
import type { Connection as MongoConnection } from 'mongoose';
import type { AppConfig } from '../../src/config';
import { chainClientsFromConfig } from '../../src/chain/clients';
import { registerModels } from '../../src/db/models';
import { connectMongo, pingMongo } from '../../src/db/mongo';
import { redactString } from '../../src/logging/redact';
import { resolvePoolAccounts } from '../../src/pool/accounts';
import { POOL_SCHEDULE_IDS } from '../../src/pool/ids';
import { connectRedis } from '../../src/redis/client';
import { keyringFromConfig } from '../../src/rotation/keyring';
import { connectTemporalClient } from '../../src/temporal/connection';
import { ensureSearchAttributes } from '../../src/temporal/searchAttributes';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/shared/searchAttributes';
import { desiredSchedules, MANAGED_SCHEDULE_IDS } from '../../workers/schedules';
import type { PoolAccounts } from '../../workflows/pool/shared';
import { CliFailure, connectTemporal, EXIT, output } from './common';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** What an operator does about a problem; absent when the check passed. */
  fix?: string;
}

interface Connections {
  mongo?: MongoConnection;
  redis?: Redis;
  temporal?: Client;
}

// A doctor run must finish even when a dependency hangs: each probe gets this long.
const PROBE_TIMEOUT_MS = 10_000;

function withTimeout<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Error text can carry a connection string with its password: redact before printing.
const reason = (err: unknown) => redactString((err as Error).message ?? String(err));

/**
 * Checks a deployment from the outside, one line per check: the connections, the namespace's search attributes,
 * the managed schedules against the configuration, the active keys in the KMS and the chain service. Read-only:
 * it changes nothing, so it is safe to run against production at any time.
 */
export async function runDoctor(config: AppConfig): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const conn: Connections = {};
  try {
    checks.push(await checkMongo(config, conn));
    checks.push(await checkRedis(config, conn));
    checks.push(await checkTemporal(config, conn));
    checks.push(await checkSearchAttributes(config, conn));
    const kms = await checkKms(config, conn);
    checks.push(...kms.checks);
    checks.push(...(await checkSchedules(config, conn, kms.accounts)));
    checks.push(await checkChain(config));
  } finally {
    conn.redis?.disconnect();
    await Promise.allSettled([conn.mongo?.close(), conn.temporal?.connection.close()]);
  }
  return checks;
}

async function checkMongo(config: AppConfig, conn: Connections): Promise<DoctorCheck> {
  try {
    conn.mongo = await withTimeout('MongoDB', connectMongo(config.mongo));
    registerModels(conn.mongo);
    await pingMongo(conn.mongo);
    return { name: 'mongodb', ok: true, detail: 'answers ping' };
  } catch (err) {
    return { name: 'mongodb', ok: false, detail: reason(err), fix: 'check MONGODB_URI (host, credentials, replica set name, TLS)' };
  }
}

async function checkRedis(config: AppConfig, conn: Connections): Promise<DoctorCheck> {
  try {
    const redis = await withTimeout('Redis', connectRedis(config.redis, { connectionName: 'patchproof-doctor', onError: () => undefined }));
    conn.redis = redis;
    await withTimeout('Redis', redis.ping());
    return { name: 'redis', ok: true, detail: 'answers PING' };
  } catch (err) {
    conn.redis?.disconnect();
    conn.redis = undefined;
    return { name: 'redis', ok: false, detail: reason(err), fix: 'check REDIS_URL / REDIS_PASSWORD (rediss:// for TLS)' };
  }
}

async function checkTemporal(config: AppConfig, conn: Connections): Promise<DoctorCheck> {
  const { address, namespace } = config.temporal;
  try {
    conn.temporal = await withTimeout('Temporal', connectTemporalClient(config.temporal));
    await withTimeout('Temporal', conn.temporal.workflowService.describeNamespace({ namespace }));
    return { name: 'temporal', ok: true, detail: `namespace ${namespace} at ${address}` };
  } catch (err) {
    return {
      name: 'temporal',
      ok: false,
      detail: `namespace ${namespace} at ${address}: ${reason(err)}`,
      fix: 'check TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the TLS / API key settings; on self-hosted, `temporal operator namespace create`',
    };
  }
}

async function checkSearchAttributes(config: AppConfig, conn: Connections): Promise<DoctorCheck> {
  const name = 'search-attributes';
  if (!conn.temporal) return { name, ok: false, detail: 'not checked: Temporal unreachable', fix: 'fix the temporal check first' };
  try {
    const listed = await withTimeout(
      'Temporal',
      conn.temporal.connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace }),
    );
    const custom = listed.customAttributes ?? {};
    const missing = ALL_SEARCH_ATTRIBUTES.filter((key) => custom[key.name] === undefined).map((key) => key.name);
    if (missing.length === 0) return { name, ok: true, detail: `${ALL_SEARCH_ATTRIBUTES.length} registered` };
    return {
      name,
      ok: false,
      detail: `missing: ${missing.join(', ')}`,
      fix: 'run `patchproof register-search-attributes` (self-hosted), or add them in Temporal Cloud (tcld namespace search-attributes add)',
    };
  } catch (err) {
    // Temporal Cloud's namespace API keys may not list attributes through the operator service.
    return { name, ok: false, detail: reason(err), fix: 'check the attributes in the Temporal Cloud UI / tcld' };
  }
}

async function checkKms(config: AppConfig, conn: Connections): Promise<{ checks: DoctorCheck[]; accounts?: PoolAccounts }> {
  const { kms, network } = chainClientsFromConfig(config);
  const checks: DoctorCheck[] = [];
  // Without the database the environment's key identifiers are checked; after a rotation the settings name others.
  const keyring = conn.mongo && keyringFromConfig(config, conn.mongo);
  const fallback = { issuer: config.kms.issuerKeyIdentifier, funding: config.pool.fundingKeyIdentifier };
  for (const purpose of ['issuer', 'funding'] as const) {
    const keyIdentifier = keyring ? await keyring.activeKeyId(purpose).catch(() => fallback[purpose]) : fallback[purpose];
    try {
      const key = await withTimeout('KMS', kms.publicKey(keyIdentifier));
      checks.push({ name: `kms-${purpose}`, ok: true, detail: `${keyIdentifier}: ${key.pubKeyHex}` });
    } catch (err) {
      checks.push({
        name: `kms-${purpose}`,
        ok: false,
        detail: `${keyIdentifier}: ${reason(err)}`,
        fix: 'check KMS_SIGN_URL and KMS_API_KEY, and that the key exists and is enabled in the KMS',
      });
    }
  }
  let accounts: PoolAccounts | undefined;
  if (checks.every((c) => c.ok)) {
    const pool = keyring ? await keyring.livePoolConfig(config.pool).catch(() => config.pool) : config.pool;
    accounts = await withTimeout('KMS', resolvePoolAccounts(pool, kms, network, false)).catch(() => undefined);
  }
  return { checks, ...(accounts && { accounts }) };
}

async function checkSchedules(config: AppConfig, conn: Connections, accounts?: PoolAccounts): Promise<DoctorCheck[]> {
  if (!conn.temporal)
    return [{ name: 'schedules', ok: false, detail: 'not checked: Temporal unreachable', fix: 'fix the temporal check first' }];
  const client = conn.temporal;
  const desired = desiredSchedules(config, accounts);
  const checks: DoctorCheck[] = [];
  const fix = 'restart a main worker (it reconciles the schedules with the configuration at start)';
  for (const want of desired) {
    const name = `schedule ${want.scheduleId}`;
    try {
      const described = await withTimeout('Temporal', client.schedule.getHandle(want.scheduleId).describe());
      const drift = scheduleDrift(want, described);
      checks.push(drift.length === 0 ? { name, ok: true, detail: 'as configured' } : { name, ok: false, detail: drift.join('; '), fix });
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) checks.push({ name, ok: false, detail: 'missing', fix });
      else checks.push({ name, ok: false, detail: reason(err), fix: 'check the temporal check' });
    }
  }
  if (config.pool.sweepCron && !accounts) {
    checks.push({
      name: `schedule ${POOL_SCHEDULE_IDS.sweep}`,
      ok: false,
      detail: 'not checked: the pool addresses could not be derived from the KMS',
      fix: 'fix the kms checks first',
    });
  }
  const wanted = new Set(desired.map((s) => s.scheduleId));
  for (const scheduleId of MANAGED_SCHEDULE_IDS.filter((id) => !wanted.has(id))) {
    if (scheduleId === POOL_SCHEDULE_IDS.sweep && config.pool.sweepCron) continue;
    const exists = await client.schedule
      .getHandle(scheduleId)
      .describe()
      .then(
        () => true,
        () => false,
      );
    if (exists) checks.push({ name: `schedule ${scheduleId}`, ok: false, detail: 'present but switched off in the configuration', fix });
  }
  return checks;
}

/** What differs between the schedule the configuration asks for and the one on the server. */
export function scheduleDrift(want: ScheduleOptions, have: ScheduleDescription): string[] {
  const drift: string[] = [];
  if (have.state.paused) drift.push(`paused${have.state.note ? ` (${have.state.note})` : ''}`);
  if (have.action.type !== 'startWorkflow' || want.action.type !== 'startWorkflow') return drift;
  const wantType = typeof want.action.workflowType === 'string' ? want.action.workflowType : want.action.workflowType.name;
  if (have.action.workflowType !== wantType) drift.push(`runs ${have.action.workflowType}, configured ${wantType}`);
  if (have.action.taskQueue !== want.action.taskQueue)
    drift.push(`task queue ${have.action.taskQueue}, configured ${want.action.taskQueue}`);
  const wantEvery = (want.spec.intervals ?? []).map((i) => msToNumber(i.every)).join(',');
  const haveEvery = (have.spec.intervals ?? []).map((i) => i.every).join(',');
  if (wantEvery !== haveEvery) drift.push(`interval ${haveEvery || 'none'} ms, configured ${wantEvery || 'none'} ms`);
  // The server stores cron lines as calendars; compare how many there are, not their text.
  const wantCalendars = (want.spec.cronExpressions ?? []).length + (want.spec.calendars ?? []).length;
  if (wantCalendars !== (have.spec.calendars ?? []).length) drift.push('calendar spec differs from the configured cron');
  return drift;
}

async function checkChain(config: AppConfig): Promise<DoctorCheck> {
  const { woc } = chainClientsFromConfig(config);
  try {
    const info = await withTimeout('chain service', woc.getChainInfo());
    return { name: 'chain', ok: true, detail: `${config.woc.baseUrl}: ${info.chain} at height ${info.blocks}` };
  } catch (err) {
    return {
      name: 'chain',
      ok: false,
      detail: `${config.woc.baseUrl}: ${reason(err)}`,
      fix: 'check WOC_BASE_URL, WOC_API_KEY and WOC_NETWORK',
    };
  }
}

export function formatDoctor(checks: readonly DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) => {
    const head = `${c.ok ? 'ok     ' : 'PROBLEM'} ${c.name.padEnd(width)}  ${c.detail}`;
    return c.fix ? `${head}\n        ${' '.repeat(width)}  fix: ${c.fix}` : head;
  });
  const problems = checks.filter((c) => !c.ok).length;
  lines.push(problems === 0 ? 'all checks passed' : `${problems} problem${problems === 1 ? '' : 's'} found`);
  return lines.join('\n');
}

export function registerDoctorCommand(
  program: Command,
  ctx: { withConfig: (fn: (config: AppConfig) => Promise<number>) => Promise<void>; json: () => boolean },
): void {
  program
    .command('doctor')
    .description(
      "Check a deployment: MongoDB, Redis, the Temporal namespace, search attributes, schedules, the KMS's active keys and the chain service. Exits 1 on any problem.",
    )
    .action(() =>
      ctx.withConfig(async (config) => {
        const checks = await runDoctor(config);
        output(ctx.json()).result(checks, formatDoctor(checks));
        return checks.every((c) => c.ok) ? EXIT.ok : EXIT.problem;
      }),
    );

  program
    .command('register-search-attributes')
    .description('Register the custom search attributes the namespace lacks (self-hosted; Temporal Cloud: tcld). Idempotent.')
    .action(() =>
      ctx.withConfig(async (config) => {
        const client = await connectTemporal(config);
        try {
          const added = await ensureSearchAttributes(client.connection as Connection, config.temporal.namespace);
          output(ctx.json()).result(
            { namespace: config.temporal.namespace, added },
            added.length === 0
              ? `namespace ${config.temporal.namespace}: every search attribute already registered`
              : `registered: ${added.join(', ')}`,
          );
          return EXIT.ok;
        } catch (err) {
          throw new CliFailure(`could not register search attributes: ${reason(err)}`, EXIT.problem);
        } finally {
          await client.connection.close();
        }
      }),
    );
}

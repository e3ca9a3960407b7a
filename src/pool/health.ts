import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import type { PoolAccounts } from '../../workflows/pool/shared';
import type { Network } from '../chain/addresses';
import type { PoolConfig } from '../config';
import type { KmsClient } from '../kms/client';
import type { Metrics } from '../metrics';
import type { WocClient } from '../woc/client';
import { resolvePoolAccounts } from './accounts';
import type { Keyring } from '../rotation/keyring';
import { POOL_SCHEDULE_IDS, sweepWorkflowId, topUpWorkflowId } from './ids';
import { utxoModel } from './models';
import { poolTotals } from './reservations';
import { readPoolSettings } from './settings';

export interface StatusTotals {
  count: number;
  totalSatoshis: number;
}

export interface LastRun {
  workflowId: string;
  runId: string;
  status: string;
  startTime: string;
  closeTime: string | null;
  summary: unknown;
}

export interface PoolHealth {
  generatedAt: string;
  db: { available: StatusTotals; reserved: StatusTotals; spent: StatusTotals; unconfirmedAvailable: number; dustAvailable: number };
  funding: { keyIdentifier: string; address: string; network: Network; minConfirmations: number; target: number };
  change: { keyIdentifier: string; address: string };
  chain:
    { height: number; totalUtxos: number; totalSatoshis: number; confirmedUtxos: number; confirmedSatoshis: number } | { error: string };
  lastTopUp: LastRun | null;
  lastSweep: LastRun | null;
  schedules: { scheduleId: string; paused: boolean; nextRunTimes: string[] }[];
}

export interface PoolHealthDeps {
  mongo: Connection;
  temporal: Client;
  kms: KmsClient;
  woc: WocClient;
  network: Network;
  pool: PoolConfig;
  /** Key settings: after a funding-key rotation the snapshot shows the new key and address. */
  keys?: Pick<Keyring, 'livePoolConfig'>;
  metrics?: Metrics;
}

/**
 * The pool snapshot behind GET /v1/admin/utxo-health and `patchproof utxo health`. Each part that depends on
 * another service reports its own error instead of failing the whole snapshot. Cached for UTXO_HEALTH_CACHE_MS,
 * and concurrent readers share one computation, so polling it is cheap.
 */
export function createPoolHealth(deps: PoolHealthDeps) {
  let cached: { at: number; value: Promise<PoolHealth> } | undefined;

  async function lastRun(query: string): Promise<LastRun | null> {
    for await (const execution of deps.temporal.workflow.list({ query, pageSize: 1 })) {
      return {
        workflowId: execution.workflowId,
        runId: execution.runId,
        status: execution.status.name.toLowerCase(),
        startTime: execution.startTime.toISOString(),
        closeTime: execution.closeTime?.toISOString() ?? null,
        summary: (execution.memo as { summary?: unknown } | undefined)?.summary ?? null,
      };
    }
    return null;
  }

  async function compute(): Promise<PoolHealth> {
    const settings = await readPoolSettings(deps.mongo, deps.pool.defaults);
    const pool = deps.keys ? await deps.keys.livePoolConfig(deps.pool) : deps.pool;
    const accounts: PoolAccounts = await resolvePoolAccounts(pool, deps.kms, deps.network, false);
    const totals = await poolTotals(deps.mongo);
    const utxos = utxoModel(deps.mongo);
    const [unconfirmedAvailable, dustAvailable] = await Promise.all([
      utxos.countDocuments({ status: 'available', blockHeight: null }),
      utxos.countDocuments({ status: 'available', satoshis: { $lt: settings.dustThresholdSats } }),
    ]);
    if (deps.metrics) {
      deps.metrics.poolTargetOutputs.set(settings.minPool);
      for (const [status, total] of Object.entries(totals)) {
        deps.metrics.poolOutputs.set({ status }, total.count);
        deps.metrics.poolSatoshis.set({ status }, total.satoshis);
      }
    }

    const chain = await Promise.all([deps.woc.getChainInfo(), deps.woc.listUnspent(accounts.funding.address)]).then(
      ([info, unspent]) => {
        const confirmed = unspent.filter((u) => u.height > 0 && info.blocks - u.height + 1 >= settings.minConfirmations);
        return {
          height: info.blocks,
          totalUtxos: unspent.length,
          totalSatoshis: unspent.reduce((s, u) => s + u.satoshis, 0),
          confirmedUtxos: confirmed.length,
          confirmedSatoshis: confirmed.reduce((s, u) => s + u.satoshis, 0),
        };
      },
      (err: unknown) => ({ error: (err as Error).message }),
    );

    const [lastTopUp, lastSweep, schedules] = await Promise.all([
      lastRun(`WorkflowId = '${topUpWorkflowId(accounts.funding.keyIdentifier)}'`),
      lastRun(`WorkflowId = '${sweepWorkflowId(accounts.change.address)}'`),
      Promise.all(
        Object.values(POOL_SCHEDULE_IDS).map(async (scheduleId) => {
          try {
            const description = await deps.temporal.schedule.getHandle(scheduleId).describe();
            return {
              scheduleId,
              paused: description.state.paused,
              nextRunTimes: description.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
            };
          } catch (err) {
            if (err instanceof ScheduleNotFoundError) return null;
            throw err;
          }
        }),
      ),
    ]);

    const totalsOut = (t: { count: number; satoshis: number }): StatusTotals => ({ count: t.count, totalSatoshis: t.satoshis });
    return {
      generatedAt: new Date().toISOString(),
      db: {
        available: totalsOut(totals.available),
        reserved: totalsOut(totals.reserved),
        spent: totalsOut(totals.spent),
        unconfirmedAvailable,
        dustAvailable,
      },
      funding: {
        keyIdentifier: accounts.funding.keyIdentifier,
        address: accounts.funding.address,
        network: deps.network,
        minConfirmations: settings.minConfirmations,
        target: settings.minPool,
      },
      change: { keyIdentifier: accounts.change.keyIdentifier, address: accounts.change.address },
      chain,
      lastTopUp,
      lastSweep,
      schedules: schedules.filter((s) => s !== null),
    };
  }

  return {
    read(): Promise<PoolHealth> {
      const now = Date.now();
      if (cached && now - cached.at < deps.pool.healthCacheMs) return cached.value;
      const value = compute();
      cached = { at: now, value };
      // A failed computation is not cached: the next reader tries again.
      value.catch(() => {
        if (cached?.value === value) cached = undefined;
      });
      return value;
    },
  };
}

export type PoolHealthReader = ReturnType<typeof createPoolHealth>;

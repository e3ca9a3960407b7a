import type { mongo } from 'mongoose';

/**
 * Slow-query tooling: read or set the database profiler, list the
 * slowest recorded operations, and explain the hot queries of the models. What the database does not implement
 * (FerretDB, the dev stand-in, has no profiler and explains with SQLite's plan) is reported, not fatal, as
 * ensure-indexes does.
 */

// MongoDB answers CommandNotFound (59) for a command it lacks; FerretDB also uses NotImplemented (238).
const UNSUPPORTED_CODES = new Set([59, 115, 238]);

export interface ProfilerState {
  status: 'ok' | 'not_implemented';
  /** 0 off, 1 slow operations only, 2 everything. */
  level?: number;
  slowms?: number;
  /** The level before this command changed it. */
  previousLevel?: number;
  error?: string;
}

/** One recorded operation, with the shape of its command (field names) but never its values. */
export interface SlowOperation {
  op: string;
  ns: string;
  millis: number;
  ts: string;
  planSummary?: string;
  docsExamined?: number;
  keysExamined?: number;
  nreturned?: number;
  commandShape: string;
}

/** A query the models run often, with the index it should use. */
export interface HotQuery {
  name: string;
  collection: string;
  filter: Record<string, unknown>;
  sort?: Record<string, 1 | -1>;
  expectedIndex: string;
}

/**
 * The queries that run on every request or every pool run. Values are placeholders of the right type: explain
 * only plans, it returns no documents.
 */
export const HOT_QUERIES: HotQuery[] = [
  {
    name: 'pool: reserve an available output',
    collection: 'utxos',
    filter: { status: 'available', keyIdentifier: 'funding', satoshis: { $gte: 1000 } },
    sort: { satoshis: 1 },
    expectedIndex: 'status_1_keyIdentifier_1_satoshis_1',
  },
  { name: 'pool: outputs held by a run', collection: 'utxos', filter: { reservedBy: 'x@y' }, expectedIndex: 'reservedBy_1' },
  { name: 'pool: outputs of a transaction', collection: 'utxos', filter: { txid: '0'.repeat(64) }, expectedIndex: 'txid_1' },
  { name: 'pool: reservations of a run', collection: 'utxo_reservations', filter: { owner: 'x@y' }, expectedIndex: 'owner_1' },
  {
    name: 'registration: patches by status',
    collection: 'patches',
    filter: { status: 'anchoring' },
    sort: { updatedAt: 1 },
    expectedIndex: 'status_1_updatedAt_1',
  },
  {
    name: 'registration: patches of an anchor',
    collection: 'patches',
    filter: { 'anchor.txid': '0'.repeat(64) },
    expectedIndex: 'anchor.txid_1',
  },
  { name: 'auth: owner by email', collection: 'owner_accounts', filter: { email: 'owner@example.invalid' }, expectedIndex: 'email_1' },
  { name: 'auth: SVD registration by PMC', collection: 'svd_registrations', filter: { pmcHex: '00' }, expectedIndex: 'pmcHex_1' },
  {
    name: 'email: messages by status',
    collection: 'email_messages',
    filter: { status: 'failed' },
    sort: { createdAt: -1 },
    expectedIndex: 'status_1_createdAt_-1',
  },
];

export interface QueryPlan {
  name: string;
  collection: string;
  expectedIndex: string;
  status: 'ok' | 'not_implemented' | 'failed';
  /** True when the plan uses the expected index, false when it scans, null when the plan does not say. */
  usesExpectedIndex: boolean | null;
  /** The plan in one line: MongoDB's stages (`IXSCAN status_1_… → FETCH`) or the stand-in's own plan text. */
  plan: string;
  error?: string;
}

export interface ProfileReport {
  database: string;
  profiler: ProfilerState;
  slowOperations: SlowOperation[] | null;
  plans: QueryPlan[];
  /** What this database does not implement, in words. */
  notImplemented: string[];
}

function unsupported(err: unknown): boolean {
  return UNSUPPORTED_CODES.has((err as { code?: number }).code ?? -1);
}

export async function readOrSetProfiler(db: mongo.Db, set?: { level: number; slowms: number }): Promise<ProfilerState> {
  try {
    const before = await db.command({ profile: -1 });
    if (!set) return { status: 'ok', level: Number(before.was), slowms: Number(before.slowms) };
    await db.command({ profile: set.level, slowms: set.slowms });
    return { status: 'ok', level: set.level, slowms: set.slowms, previousLevel: Number(before.was) };
  } catch (err) {
    if (!unsupported(err)) throw err;
    return { status: 'not_implemented', error: (err as Error).message };
  }
}

/** Field names of a command, recursively, with every value replaced: filters may hold emails or codes. */
export function commandShape(value: unknown, depth = 0): string {
  if (depth > 4) return '…';
  if (Array.isArray(value)) return `[${value.length > 0 ? commandShape(value[0], depth + 1) : ''}]`;
  if (value !== null && typeof value === 'object' && !(value instanceof Date) && !('_bsontype' in value)) {
    const entries = Object.entries(value).filter(([k]) => !['lsid', '$clusterTime', '$db', '$readPreference'].includes(k));
    return `{${entries.map(([k, v]) => `${k}: ${commandShape(v, depth + 1)}`).join(', ')}}`;
  }
  return '?';
}

export async function slowestOperations(db: mongo.Db, limit: number): Promise<SlowOperation[] | null> {
  try {
    const docs = await db.collection('system.profile').find({}).sort({ millis: -1 }).limit(limit).toArray();
    return docs.map((d) => ({
      op: String(d.op),
      ns: String(d.ns),
      millis: Number(d.millis),
      ts: d.ts instanceof Date ? d.ts.toISOString() : String(d.ts),
      ...(typeof d.planSummary === 'string' && { planSummary: d.planSummary }),
      ...(typeof d.docsExamined === 'number' && { docsExamined: d.docsExamined }),
      ...(typeof d.keysExamined === 'number' && { keysExamined: d.keysExamined }),
      ...(typeof d.nreturned === 'number' && { nreturned: d.nreturned }),
      commandShape: commandShape(d.command),
    }));
  } catch (err) {
    if (!unsupported(err)) throw err;
    return null;
  }
}

interface PlanStage {
  stage?: string;
  indexName?: string;
  inputStage?: PlanStage;
  inputStages?: PlanStage[];
}

function stages(stage: PlanStage | undefined): PlanStage[] {
  if (!stage) return [];
  return [stage, ...stages(stage.inputStage), ...(stage.inputStages ?? []).flatMap(stages)];
}

/** Plans one hot query with explain('queryPlanner'): it reads no documents. */
export async function explainHotQuery(db: mongo.Db, query: HotQuery): Promise<QueryPlan> {
  const base = { name: query.name, collection: query.collection, expectedIndex: query.expectedIndex };
  try {
    const cursor = db.collection(query.collection).find(query.filter);
    if (query.sort) cursor.sort(query.sort);
    const explained = (await cursor.explain('queryPlanner')) as {
      queryPlanner?: { winningPlan?: PlanStage & { queryPlan?: PlanStage }; Plan?: string[] };
    };
    const planner = explained.queryPlanner ?? {};
    if (planner.winningPlan) {
      // MongoDB 7+ may wrap the classic plan in queryPlan (slot-based engine).
      const all = stages(planner.winningPlan.queryPlan ?? planner.winningPlan);
      const plan = all.map((s) => (s.indexName ? `${s.stage} ${s.indexName}` : s.stage)).join(' ← ');
      // EOF: the collection does not exist yet, so there is nothing to say about its indexes.
      if (all.every((s) => s.stage === 'EOF')) return { ...base, status: 'ok', usesExpectedIndex: null, plan };
      return { ...base, status: 'ok', usesExpectedIndex: all.some((s) => s.indexName === query.expectedIndex), plan };
    }
    if (Array.isArray(planner.Plan)) {
      // FerretDB: its backend's plan text. It pushes filters down only partly, so it says nothing about our index.
      return { ...base, status: 'ok', usesExpectedIndex: null, plan: planner.Plan.join('; ') };
    }
    return { ...base, status: 'ok', usesExpectedIndex: null, plan: JSON.stringify(planner).slice(0, 300) };
  } catch (err) {
    if (unsupported(err)) return { ...base, status: 'not_implemented', usesExpectedIndex: null, plan: '', error: (err as Error).message };
    return { ...base, status: 'failed', usesExpectedIndex: null, plan: '', error: (err as Error).message };
  }
}

export async function profileDatabase(
  db: mongo.Db,
  options: { set?: { level: number; slowms: number }; limit: number; queries?: HotQuery[] },
): Promise<ProfileReport> {
  const profiler = await readOrSetProfiler(db, options.set);
  const slowOperations = profiler.status === 'ok' ? await slowestOperations(db, options.limit) : null;
  const plans: QueryPlan[] = [];
  for (const query of options.queries ?? HOT_QUERIES) plans.push(await explainHotQuery(db, query));
  const notImplemented: string[] = [];
  if (profiler.status === 'not_implemented') {
    notImplemented.push('profiler (the profile command): no slow-operation log; use the query plans below and the API latency metrics');
  }
  if (plans.some((p) => p.status === 'ok' && p.usesExpectedIndex === null)) {
    notImplemented.push("index use in query plans: the plan is the storage backend's own and does not name our indexes");
  }
  for (const p of plans.filter((q) => q.status === 'not_implemented')) notImplemented.push(`explain of ${p.collection}`);
  return { database: db.databaseName, profiler, slowOperations, plans, notImplemented };
}

import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createApp } from '../../api/app';
import type { Logger } from '../../src/logging/logger';
import { listen, type Listening } from './http';
import { apiClient } from './patchApi';
import { startMainWorkerProcess, startPoolStack, type PoolStack } from './poolStack';

/**
 * The crash matrix: a workflow kind run once per activity boundary with the production worker (workers/main.ts, its
 * own process) SIGKILLed at that boundary by test/support/crashInterceptor.ts, then a fresh worker left to finish.
 * The boundaries come from the recorded histories of an uncrashed run of the same kind, so an activity added to a
 * workflow is covered without editing this file.
 */

export type Phase = 'before' | 'after';

export interface Boundary {
  activityType: string;
  /** The n-th activity of this type in the run (across every workflow the run starts, in start order). */
  occurrence: number;
  phase: Phase;
}

export const boundaryLabel = (b: Boundary) => `${b.activityType}#${b.occurrence}:${b.phase}`;

/** What a cell found: `ok`, `FAIL` (problems listed) or `not reached` (the run never got to that boundary). */
export interface CellOutcome {
  kind: string;
  boundary: Boundary;
  outcome: 'ok' | 'FAIL' | 'not reached';
  problems: string[];
  seconds: number;
  /** Where the time went: seconds per step of the cell (arrange, crash worker up, crash, restart, finish, checks). */
  steps: string;
}

/** The stack a scenario runs in: pool, dev KMS, chain simulator, API; the worker process is the harness's. */
export interface MatrixStack {
  stack: PoolStack;
  api: ReturnType<typeof apiClient>;
  baseUrl: string;
}

/** One run of a scenario, started: how to wait for it and what to check once it is done. */
export interface StartedRun {
  /** Resolves once the run has ended (any way); throws when it is still going after `timeoutMs`. */
  done(timeoutMs: number): Promise<void>;
  /** Problems with the run's result and records (empty when all is well). */
  check(): Promise<string[]>;
  /** Transactions the run must have had the node accept, exactly. */
  expectedTransactions: number;
  /** The workflow ids that must each have exactly one run. */
  workflowIds: string[];
}

export interface Scenario<A = unknown> {
  kind: string;
  /** Workflow ids of this kind's runs (and the workflows they start), as a regular expression. */
  scope: string;
  stackOverrides: Record<string, string>;
  /** Once per stack, with an uncrashed worker. */
  prepare(env: MatrixStack): Promise<void>;
  /** Before each run, with an uncrashed worker: what the run needs (a registered patch to transfer, funds). */
  arrange(env: MatrixStack, label: string): Promise<A>;
  start(env: MatrixStack, label: string, arranged: A): Promise<StartedRun>;
}

/** Broadcasts the chain simulator saw: accepted txids, and refusals of an input already spent (double spends). */
class BroadcastLog {
  accepted: string[] = [];
  doubleSpends: string[] = [];

  logger(): Logger {
    const debug = (message: string, meta?: { txid?: string; stage?: string; reason?: string }) => {
      if (message === 'broadcast accepted' && meta?.txid) this.accepted.push(meta.txid);
      if (message === 'broadcast rejected' && (meta?.stage === 'conflict' || meta?.stage === 'inputs')) {
        this.doubleSpends.push(`${meta.txid} (${meta.reason})`);
      }
    };
    const ignore = () => undefined;
    return { debug, info: ignore, warn: ignore, error: ignore } as unknown as Logger;
  }

  mark(): { accepted: () => string[]; doubleSpends: () => string[] } {
    const [a, d] = [this.accepted.length, this.doubleSpends.length];
    return { accepted: () => [...new Set(this.accepted.slice(a))], doubleSpends: () => this.doubleSpends.slice(d) };
  }
}

const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
const RUN_TIMEOUT_MS = 240_000;
const INTERCEPTOR = path.join(__dirname, 'crashInterceptor.ts');

/** The worker processes of one stack: at most one alive at a time. */
class Workers {
  private current: ChildProcess | undefined;
  readonly all: ChildProcess[] = [];

  constructor(private readonly stack: PoolStack) {}

  async start(overrides: Record<string, string> = {}): Promise<ChildProcess> {
    await this.stop();
    const child = await startMainWorkerProcess(this.stack, {
      WORKER_SHUTDOWN_GRACE_MS: '2000',
      WORKER_SHUTDOWN_FORCE_MS: '4000',
      ...overrides,
    });
    this.current = child;
    this.all.push(child);
    return child;
  }

  alive(): ChildProcess | undefined {
    const c = this.current;
    return c && c.exitCode === null && c.signalCode === null ? c : undefined;
  }

  /** Stops the live worker, if any, the polite way (SIGTERM: it drains); the crash itself is the interceptor's. */
  async stop(): Promise<void> {
    const c = this.alive();
    if (!c) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGTERM');
    const force = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(force);
  }

  killAll(): void {
    for (const c of this.all) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

async function workflowsStartedSince(
  client: Client,
  since: Date,
  scope: RegExp,
): Promise<{ workflowId: string; runId: string; status: string }[]> {
  const found: { workflowId: string; runId: string; status: string }[] = [];
  for await (const e of client.workflow.list({ query: `StartTime >= '${since.toISOString()}'` })) {
    if (scope.test(e.workflowId)) found.push({ workflowId: e.workflowId, runId: e.runId, status: e.status.name });
  }
  return found;
}

/**
 * The activity boundaries of a finished run: every activity its workflows scheduled, in schedule order, numbered
 * per type. Read from the recorded histories, never from a list kept by hand.
 */
export async function boundariesOf(client: Client, since: Date, scope: RegExp): Promise<Boundary[]> {
  const scheduled: { at: number; type: string }[] = [];
  for (const { workflowId, runId } of await workflowsStartedSince(client, since, scope)) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    for (const event of history.events ?? []) {
      const attrs = event.activityTaskScheduledEventAttributes;
      if (!attrs?.activityType?.name) continue;
      const at = Number(event.eventTime?.seconds ?? 0) * 1000 + Math.floor((event.eventTime?.nanos ?? 0) / 1e6);
      scheduled.push({ at, type: attrs.activityType.name });
    }
  }
  scheduled.sort((a, b) => a.at - b.at);
  const counts = new Map<string, number>();
  const boundaries: Boundary[] = [];
  for (const { type } of scheduled) {
    const occurrence = (counts.get(type) ?? 0) + 1;
    counts.set(type, occurrence);
    boundaries.push({ activityType: type, occurrence, phase: 'before' }, { activityType: type, occurrence, phase: 'after' });
  }
  return boundaries;
}

/**
 * The killed worker's attempts would be retried only once their heartbeat or start-to-close timeout passes (up to
 * minutes). To keep a cell to seconds, each attempt left running by the dead worker gets a 1 s heartbeat timeout
 * (UpdateActivityOptions), so the server times it out as it would have later; once it has, the activity's own
 * options are restored before its retry can run long.
 */
async function hastenOrphanedAttempts(client: Client, namespace: string, since: Date, scope: RegExp): Promise<void> {
  const service = client.workflowService;
  const orphaned: { workflowId: string; runId: string; activityId: string; attempt: number }[] = [];
  for (const { workflowId, runId, status } of await workflowsStartedSince(client, since, scope)) {
    if (status !== 'RUNNING') continue;
    const described = await client.workflow.getHandle(workflowId, runId).describe();
    for (const a of described.raw.pendingActivities ?? []) {
      if (a.state === STARTED && a.activityId) orphaned.push({ workflowId, runId, activityId: a.activityId, attempt: a.attempt ?? 1 });
    }
  }
  await Promise.all(
    orphaned.map(async ({ workflowId, runId, activityId, attempt }) => {
      const execution = { workflowId, runId };
      await service.updateActivityOptions({
        namespace,
        execution,
        id: activityId,
        identity: 'crash-matrix',
        activityOptions: { heartbeatTimeout: msToTs('1 second') },
        updateMask: { paths: ['heartbeat_timeout'] },
      });
      // Restore once this attempt is over (the activity waits for its retry, or a later attempt runs).
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const described = await client.workflow.getHandle(workflowId, runId).describe();
        const pending = described.raw.pendingActivities?.find((a) => a.activityId === activityId);
        if (!pending) return;
        if (pending.state !== STARTED || (pending.attempt ?? 1) > attempt) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await service
        .updateActivityOptions({ namespace, execution, id: activityId, identity: 'crash-matrix', restoreOriginal: true })
        .catch(() => undefined);
    }),
  );
}

/** Waits until no workflow in scope is running (the previous cell's, the arrangement's). */
async function quiesce(client: Client, scope: RegExp): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const running: string[] = [];
    for await (const e of client.workflow.list({ query: "ExecutionStatus = 'Running'" }))
      if (scope.test(e.workflowId)) running.push(e.workflowId);
    if (running.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still running before the cell: ${running.join(', ')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Resolves once the run has ended: its own signal (the API says it is done) and every workflow of the run closed, so
 * the anchor batch behind a registration, or the workflow task after a last activity, is not still in flight.
 */
async function runEnded(client: Client, run: StartedRun, since: Date, scope: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await run.done(timeoutMs);
  for (;;) {
    const open = (await workflowsStartedSince(client, since, scope)).filter((w) => w.status === 'RUNNING').map((w) => w.workflowId);
    if (open.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still running: ${open.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits for the worker to die (the interceptor's SIGKILL) or the run to end, whichever comes first. */
async function crashOrEnd(worker: ChildProcess, ended: Promise<void>): Promise<void> {
  const died = new Promise<void>((resolve) => {
    if (worker.exitCode !== null || worker.signalCode !== null) resolve();
    else worker.once('exit', () => resolve());
  });
  await Promise.race([died, ended.catch(() => undefined)]);
}

export interface MatrixOptions {
  /** Which of the derived boundaries to run; all by default. */
  pick?: (boundaries: Boundary[]) => Boundary[];
  /** Called with each finished cell, e.g. to print progress. */
  onCell?: (cell: CellOutcome) => void;
}

/** Runs one scenario's row of the matrix on one stack: an uncrashed run to derive the boundaries, then one cell each. */
export async function runScenarioRow<A>(
  scenario: Scenario<A>,
  options: MatrixOptions = {},
): Promise<{ boundaries: Boundary[]; cells: CellOutcome[] }> {
  const log = new BroadcastLog();
  const scope = new RegExp(scenario.scope);
  const stack = await startPoolStack(
    { FEE_PER_KB: '100', ANCHOR_CONFIRMATIONS: '1', ANCHOR_BATCH_MAX_WAIT_SECONDS: '1', ...scenario.stackOverrides },
    { blockIntervalMs: 300, inProcessWorker: false, simulatorLogger: log.logger() },
  );
  let server: Listening | undefined;
  const workers = new Workers(stack);
  const markers = mkdtempSync(path.join(tmpdir(), 'crash-matrix-'));
  try {
    server = await listen(createApp(stack.deps));
    const env: MatrixStack = { stack, api: apiClient(server.baseUrl, stack.deps.config.auth.apiKey), baseUrl: server.baseUrl };
    await workers.start({ WORKER_TEST_INTERCEPTOR_MODULE: INTERCEPTOR, CRASH_CONTROL: path.join(markers, 'control.json') });
    await scenario.prepare(env);

    // The uncrashed run: it must pass the same checks, and its histories name the boundaries.
    const baseline = await runCell(scenario, env, workers, log, scope, markers, 'baseline', undefined);
    if (baseline.problems.length > 0)
      throw new Error(`${scenario.kind}: the uncrashed run fails its checks: ${baseline.problems.join('; ')}`);
    const boundaries = await boundariesOf(stack.deps.temporal, baseline.since, scope);
    if (boundaries.length === 0) throw new Error(`${scenario.kind}: the uncrashed run scheduled no activity`);

    const cells: CellOutcome[] = [];
    const chosen = options.pick ? options.pick(boundaries) : boundaries;
    for (const [i, boundary] of chosen.entries()) {
      const t0 = Date.now();
      const result = await runCell(scenario, env, workers, log, scope, markers, `c${i}`, boundary);
      const cell: CellOutcome = {
        kind: scenario.kind,
        boundary,
        outcome: !result.crashed ? 'not reached' : result.problems.length > 0 ? 'FAIL' : 'ok',
        problems: result.problems,
        seconds: Math.round((Date.now() - t0) / 100) / 10,
        steps: result.steps,
      };
      cells.push(cell);
      options.onCell?.(cell);
    }
    return { boundaries, cells };
  } finally {
    await workers.stop().catch(() => undefined);
    workers.killAll();
    await server?.close();
    await stack.close();
  }
}

async function runCell<A>(
  scenario: Scenario<A>,
  env: MatrixStack,
  workers: Workers,
  log: BroadcastLog,
  scope: RegExp,
  markers: string,
  label: string,
  boundary: Boundary | undefined,
): Promise<{ since: Date; crashed: boolean; problems: string[]; steps: string }> {
  const { stack } = env;
  const control = path.join(markers, 'control.json');
  const workerEnv = { WORKER_TEST_INTERCEPTOR_MODULE: INTERCEPTOR, CRASH_CONTROL: control };
  const timing: string[] = [];
  let last = Date.now();
  const step = (name: string) => {
    timing.push(`${name} ${((Date.now() - last) / 1000).toFixed(1)}`);
    last = Date.now();
  };
  const temporalClient = stack.deps.temporal;
  if (!workers.alive()) await workers.start(workerEnv);
  const arranged = await scenario.arrange(env, label);
  // What the arrangement started (a registration's anchor batch) ends before the cell is armed, so the crash point
  // counts this run's activities only.
  await quiesce(temporalClient, scope);
  step('arrange');
  const marker = path.join(markers, `${scenario.kind}-${label}.jsonl`.replace(/[^A-Za-z0-9.-]/g, '_'));
  // The live worker arms itself from the control file at its next activity start; the previous cell has ended.
  if (boundary) {
    const at = `${boundary.activityType}:${boundary.phase}:${boundary.occurrence}`;
    writeFileSync(control, JSON.stringify({ cell: `${scenario.kind}/${label}`, at, scope: scenario.scope, marker }));
  }
  const since = new Date(Date.now() - 1000);
  const broadcasts = log.mark();
  const run = await scenario.start(env, label, arranged);
  const problems: string[] = [];
  let crashed = false;
  let ended: Promise<void> | undefined;
  if (boundary) {
    const victim = workers.alive();
    if (!victim) throw new Error('the worker is not running');
    ended = runEnded(temporalClient, run, since, scope, RUN_TIMEOUT_MS);
    await crashOrEnd(victim, ended);
    writeFileSync(control, '');
    // The marker says the interceptor fired (its kill may land a moment after the run looked finished).
    crashed = existsSync(marker) && readFileSync(marker, 'utf8').trim().length > 0;
    if (crashed) {
      await new Promise<void>((resolve) => (workers.alive() ? victim.once('exit', () => resolve()) : resolve()));
      step('crash');
      await Promise.all([
        hastenOrphanedAttempts(temporalClient, stack.deps.config.temporal.namespace, since, scope),
        workers.start(workerEnv),
      ]);
      step('restart');
    } else if (!workers.alive()) {
      problems.push(`the worker died without reaching ${boundaryLabel(boundary)}`);
      await workers.start(workerEnv);
    }
  }
  try {
    // The wait begun before the crash is the one that settles: a second poller beside it could still be calling
    // Temporal when the stack closes its connection, and a call retried on a closed channel throws from a timer.
    // If that first wait failed (a call during the crash), a fresh one decides.
    await (ended ?? Promise.reject(new Error('no wait yet'))).catch(() => runEnded(temporalClient, run, since, scope, RUN_TIMEOUT_MS));
  } catch (err) {
    problems.push(`did not finish: ${err instanceof Error ? err.message : String(err)}`);
    return { since, crashed, problems, steps: timing.join(', ') };
  }
  step('finish');
  problems.push(...(await run.check()));

  // Every workflow of the run completed, each id ran once.
  const started = await workflowsStartedSince(temporalClient, since, scope);
  for (const w of started) if (w.status !== 'COMPLETED') problems.push(`${w.workflowId} is ${w.status}`);
  for (const id of run.workflowIds) {
    const runs = started.filter((w) => w.workflowId === id).length;
    if (runs !== 1) problems.push(`${id} ran ${runs} times`);
  }
  // The chain: no input spent twice, exactly the transactions the run calls for.
  const doubleSpends = broadcasts.doubleSpends();
  if (doubleSpends.length > 0) problems.push(`double spends refused by the node: ${doubleSpends.join(', ')}`);
  const accepted = broadcasts.accepted();
  if (accepted.length !== run.expectedTransactions) {
    problems.push(`${accepted.length} transactions accepted, expected ${run.expectedTransactions}`);
  }
  // The pool: utxo-health counts no reservation left behind.
  const health = await env.api.adminGet('/v1/admin/utxo-health');
  const reserved = (health.body as { db?: { reserved?: { count?: number } } }).db?.reserved?.count;
  if (health.status !== 200 || reserved === undefined) problems.push(`utxo-health answered ${health.status}`);
  else if (reserved !== 0) problems.push(`utxo-health: ${reserved} reservations leaked`);
  step('checks');
  return { since, crashed, problems, steps: timing.join(', ') };
}

/** The matrix as a table: one line per cell, grouped by workflow kind. */
export function formatMatrix(cells: CellOutcome[]): string {
  const rows = cells.map((c) => [c.kind, boundaryLabel(c.boundary), c.outcome, `${c.seconds}s`, c.problems.join('; ')]);
  const header = ['workflow', 'boundary', 'outcome', 'time', 'problems'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const totals = ['ok', 'FAIL', 'not reached'].map((o) => `${cells.filter((c) => c.outcome === o).length} ${o}`).join(', ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), '', `${cells.length} cells: ${totals}`].join('\n');
}

import { Hash, Utils } from '@bsv/sdk';
import { z } from 'zod';
import type { AppConfig } from '../config';
import type { Logger } from '../logging/logger';
import { type BroadcastResult, classifyBroadcastReason, nodeReasonOf } from './broadcastResult';
import { WocError, type WocErrorKind } from './errors';
import { createRateLimiter } from './rateLimiter';
import { fullJitterDelay, parseRetryAfter, scrubWireText } from '../net/retry';
import type { TscProof } from './tscProof';

/**
 * WhatsOnChain client (also speaks to the chain simulator, which serves the same API). Every attempt waits for the
 * client's rate limiter and has its own timeout; timeouts, network errors, 5xx and 429 are retried with full-jitter
 * backoff, or after Retry-After when the service sends one. Broadcasting is retried too: resending the same tx
 * is harmless, the node answers "already in the mempool", which counts as success.
 */

export interface WocClientOptions {
  fetchImpl?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
  logger?: Logger;
  /** A Retry-After longer than this is not waited out: the call fails as retryable and the caller retries later. */
  maxRetryAfterMs?: number;
  /** Told the outcome and duration of every call (retries and rate-limiter waits included), e.g. for metrics. */
  observe?: (call: { operation: WocOperation; outcome: 'success' | WocErrorKind | 'error'; seconds: number }) => void;
}

/** Operation names as reported to `observe`, one per client method. */
export const WOC_OPERATIONS = {
  listUnspent: 'list_unspent',
  getTx: 'get_tx',
  getRawTx: 'get_raw_tx',
  getTxStatuses: 'get_tx_statuses',
  broadcast: 'broadcast',
  getChainInfo: 'get_chain_info',
  getMerkleProof: 'get_merkle_proof',
  getBlockHeader: 'get_block_header',
  getOutputSpend: 'get_output_spend',
} as const satisfies Record<keyof WocClient, string>;

export type WocOperation = (typeof WOC_OPERATIONS)[keyof typeof WOC_OPERATIONS];

export interface WocUtxo {
  txid: string;
  vout: number;
  satoshis: number;
  /** 0 while unconfirmed. */
  height: number;
}

export interface WocTx {
  txid: string;
  size: number;
  /** 0 while in the mempool. */
  confirmations: number;
  blockHash?: string;
  blockHeight?: number;
  blockTime?: number;
  outputs: { vout: number; satoshis: number; scriptHex: string }[];
}

export interface WocTxStatus {
  txid: string;
  state: 'confirmed' | 'mempool' | 'unknown';
  confirmations: number;
  blockHash?: string;
  blockHeight?: number;
}

export interface WocChainInfo {
  chain: string;
  blocks: number;
  headers: number;
  bestBlockHash: string;
}

export interface WocBlockHeader {
  hash: string;
  height: number;
  merkleRoot: string;
  confirmations: number;
  time: number;
  previousBlockHash?: string;
  /** The remaining fields of the 80-byte header, when the service gives them (WhatsOnChain and the simulator do). */
  version?: number;
  bits?: number;
  nonce?: number;
}

/** `confirmed` is present when the service says (the simulator does; WhatsOnChain's `spent` endpoint does not). */
export type WocOutputSpend = { spent: false } | { spent: true; txid: string; vin: number; confirmed?: boolean };

export interface WocClient {
  /** Outputs paying the address that no tx spends, mempool included (WOC `unspent/all` without `isSpentInMempoolTx`). */
  listUnspent(address: string): Promise<WocUtxo[]>;
  /** The tx with its confirmations, or null when the service does not know it. */
  getTx(txid: string): Promise<WocTx | null>;
  getRawTx(txid: string): Promise<string | null>;
  /** Status of many txs; sent in batches of 20, WOC's limit. */
  getTxStatuses(txids: string[]): Promise<WocTxStatus[]>;
  broadcast(rawTxHex: string): Promise<BroadcastResult>;
  getChainInfo(): Promise<WocChainInfo>;
  /** The TSC proof of a mined tx, or null while unmined or unknown. */
  getMerkleProof(txid: string): Promise<TscProof | null>;
  getBlockHeader(hashOrHeight: string | number): Promise<WocBlockHeader | null>;
  getOutputSpend(txid: string, vout: number): Promise<WocOutputSpend>;
}

const STATUS_BATCH = 20;
/** 1000 confirmed outputs a page: a bound far above any pool, so a server that never stops paging is an error. */
const MAX_UNSPENT_PAGES = 1000;
const SATOSHIS_PER_BSV = 100_000_000;

const unspentAllSchema = z.object({
  result: z.array(
    z.object({
      height: z.number().int(),
      tx_pos: z.number().int(),
      tx_hash: z.string(),
      value: z.number(),
      isSpentInMempoolTx: z.boolean().optional(),
    }),
  ),
  nextPageToken: z.string().optional(),
});
const txSchema = z.object({
  txid: z.string(),
  size: z.number(),
  confirmations: z.number().optional(),
  blockhash: z.string().optional(),
  blockheight: z.number().optional(),
  blocktime: z.number().optional(),
  vout: z.array(z.object({ n: z.number().int(), value: z.number(), scriptPubKey: z.object({ hex: z.string() }) })),
});
const statusSchema = z.array(
  z.object({
    txid: z.string(),
    blockhash: z.string().optional(),
    blockheight: z.number().optional(),
    confirmations: z.number().optional(),
    error: z.string().optional(),
  }),
);
const chainInfoSchema = z.object({ chain: z.string(), blocks: z.number(), headers: z.number(), bestblockhash: z.string() });
const proofSchema = z.array(z.object({ index: z.number().int(), txOrId: z.string(), target: z.string(), nodes: z.array(z.string()) }));
const headerSchema = z.object({
  hash: z.string(),
  height: z.number(),
  merkleroot: z.string(),
  confirmations: z.number(),
  time: z.number(),
  previousblockhash: z.string().optional(),
  version: z.number().int().optional(),
  // Hex, as bitcoind and WhatsOnChain show it (`1d00ffff`).
  bits: z
    .string()
    .regex(/^[0-9a-fA-F]{1,8}$/)
    .optional(),
  nonce: z.number().int().optional(),
});
const spendSchema = z.object({ txid: z.string(), vin: z.number().int(), status: z.string().optional() });

interface Response {
  status: number;
  body: string;
}

interface RequestSpec {
  method: 'GET' | 'POST';
  path: string;
  json?: unknown;
  /** A response the caller will interpret itself even though its status would otherwise be retried. */
  isVerdict?: (status: number, body: string) => boolean;
}

export function createWocClient(config: AppConfig['woc'] & WocClientOptions): WocClient {
  const ctx = wocContext(config);
  const client: WocClient = {
    listUnspent: (address) => listUnspent(ctx, address),
    getTx: (txid) => getTx(ctx, txid),
    getRawTx: (txid) => getRawTx(ctx, txid),
    getTxStatuses: (txids) => getTxStatuses(ctx, txids),
    broadcast: (rawTxHex) => broadcast(ctx, rawTxHex),
    getChainInfo: () => getChainInfo(ctx),
    getMerkleProof: (txid) => getMerkleProof(ctx, txid),
    getBlockHeader: (hashOrHeight) => getBlockHeader(ctx, hashOrHeight),
    getOutputSpend: (txid, vout) => getOutputSpend(ctx, txid, vout),
  };
  return config.observe ? observed(client, config.observe) : client;
}

/** What every request of one client shares: its settings, the clock and transport it was given, and its rate limiter. */
interface WocContext {
  config: AppConfig['woc'] & WocClientOptions;
  fetchImpl: typeof fetch;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  maxRetryAfterMs: number;
  /** The API root, `/v1/bsv/<network>` included. */
  root: string;
  limiter: ReturnType<typeof createRateLimiter>;
}

function wocContext(config: AppConfig['woc'] & WocClientOptions): WocContext {
  const now = config.now ?? Date.now;
  const sleep = config.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  return {
    config,
    fetchImpl: config.fetchImpl ?? fetch,
    now,
    sleep,
    random: config.random ?? Math.random,
    maxRetryAfterMs: config.maxRetryAfterMs ?? 30_000,
    root: `${config.baseUrl.replace(/\/+$/, '')}/v1/bsv/${config.network}`,
    limiter: createRateLimiter({ requestsPerSecond: config.requestsPerSecond, burst: config.requestsPerSecond, now, sleep }),
  };
}

function requestHeaders({ config }: WocContext, withBody: boolean): Record<string, string> {
  return {
    accept: 'application/json, text/plain',
    ...(withBody && { 'content-type': 'application/json' }),
    // WhatsOnChain takes its API key as the bare Authorization header (no scheme).
    ...(config.apiKey && { authorization: config.apiKey }),
  };
}

/** Belt and braces: bodies are echoed into errors, and a misbehaving proxy could echo the key back. */
function scrub({ config }: WocContext, text: string): string {
  return scrubWireText(text, config.apiKey);
}

/** An attempt that failed in a way worth retrying, with the wait the service asked for, if any. */
interface FailedAttempt {
  failure: WocError;
  waitMs?: number;
}

function attemptFailure(
  spec: RequestSpec,
  kind: WocErrorKind,
  what: string,
  attempt: number,
  status?: number,
  retryAfterMs?: number,
): WocError {
  return new WocError(kind, `WOC ${spec.method} ${spec.path}: ${what}`, {
    method: spec.method,
    path: spec.path,
    attempts: attempt + 1,
    ...(status !== undefined && { status }),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
}

/** Sends the request and retries timeouts, network errors, 5xx and 429 with backoff, or after Retry-After. */
async function request(ctx: WocContext, spec: RequestSpec): Promise<Response> {
  const attempts = ctx.config.retries + 1;
  for (let attempt = 0; ; attempt++) {
    await ctx.limiter.acquire();
    const outcome = await attemptOnce(ctx, spec, attempt);
    if (!('failure' in outcome)) return outcome;
    const { failure, waitMs } = outcome;
    if (attempt + 1 >= attempts) throw failure;
    const delay = waitMs ?? fullJitterDelay(attempt, ctx.random);
    ctx.config.logger?.debug('woc retry', { path: spec.path, attempt: attempt + 1, kind: failure.kind, delayMs: delay });
    await ctx.sleep(delay);
  }
}

/** One attempt: the response, or a retryable failure. A Retry-After longer than the client waits out is thrown. */
async function attemptOnce(ctx: WocContext, spec: RequestSpec, attempt: number): Promise<Response | FailedAttempt> {
  const { config, fetchImpl } = ctx;
  try {
    const res = await fetchImpl(`${ctx.root}${spec.path}`, {
      method: spec.method,
      headers: requestHeaders(ctx, spec.json !== undefined),
      ...(spec.json !== undefined && { body: JSON.stringify(spec.json) }),
      signal: AbortSignal.timeout(config.timeoutMs),
    });
    const body = await res.text();
    if ((res.status !== 429 && res.status < 500) || spec.isVerdict?.(res.status, body)) return { status: res.status, body };
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), ctx.now());
    const kind = res.status === 429 ? 'rate_limited' : 'server_error';
    const failure = attemptFailure(
      spec,
      kind,
      `HTTP ${res.status} ${scrub(ctx, body.slice(0, 200))}`.trim(),
      attempt,
      res.status,
      retryAfterMs,
    );
    if (retryAfterMs !== undefined && retryAfterMs > ctx.maxRetryAfterMs) throw failure;
    return { failure, waitMs: retryAfterMs };
  } catch (err) {
    if (err instanceof WocError) throw err;
    // By name, not instanceof: the abort reason is a DOMException, which may come from another realm.
    const name = (err as { name?: unknown } | undefined)?.name;
    const timedOut = name === 'TimeoutError' || name === 'AbortError';
    const detail = timedOut ? `no answer within ${config.timeoutMs} ms` : networkDetail(err);
    return { failure: attemptFailure(spec, timedOut ? 'timeout' : 'network', scrub(ctx, detail), attempt) };
  }
}

function parse<T>(schema: z.ZodType<T>, res: Response, path: string): T {
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    json = undefined;
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new WocError('bad_response', `WOC GET ${path}: unexpected response body`, {
      method: 'GET',
      path,
      status: res.status,
      attempts: 1,
    });
  }
  return parsed.data;
}

/** GET that maps 404 to null and any other non-2xx to a non-retryable error. */
async function get<T>(ctx: WocContext, path: string, schema: z.ZodType<T>): Promise<T | null> {
  const res = await request(ctx, { method: 'GET', path });
  if (res.status === 404) return null;
  if (res.status < 200 || res.status >= 300) throw badRequest(ctx, 'GET', path, res);
  return parse(schema, res, path);
}

function badRequest(ctx: WocContext, method: string, path: string, res: Response): WocError {
  return new WocError('bad_request', `WOC ${method} ${path}: HTTP ${res.status} ${scrub(ctx, res.body.slice(0, 200))}`.trim(), {
    method,
    path,
    status: res.status,
    attempts: 1,
  });
}

const enc = encodeURIComponent;

async function listUnspent(ctx: WocContext, address: string): Promise<WocUtxo[]> {
  // Confirmed outputs come in pages of 1000; an address with more must not be read as if it had only those.
  const outputs = new Map<string, WocUtxo>();
  let token: string | undefined;
  for (let page = 0; ; page += 1) {
    if (page >= MAX_UNSPENT_PAGES) {
      throw new WocError('bad_response', `WOC unspent list of ${address} has more than ${MAX_UNSPENT_PAGES} pages`, {
        method: 'GET',
        path: `/address/${enc(address)}/unspent/all`,
        attempts: 1,
      });
    }
    const path = `/address/${enc(address)}/unspent/all${token ? `?token=${enc(token)}` : ''}`;
    const data = await get(ctx, path, unspentAllSchema);
    for (const u of data?.result ?? []) {
      if (u.isSpentInMempoolTx) continue;
      outputs.set(`${u.tx_hash}:${u.tx_pos}`, { txid: u.tx_hash, vout: u.tx_pos, satoshis: u.value, height: u.height });
    }
    token = data?.nextPageToken || undefined;
    if (!token) return [...outputs.values()];
  }
}

async function getTx(ctx: WocContext, txid: string): Promise<WocTx | null> {
  const data = await get(ctx, `/tx/hash/${enc(txid)}`, txSchema);
  if (!data) return null;
  return {
    txid: data.txid,
    size: data.size,
    confirmations: data.confirmations ?? 0,
    ...(data.blockhash !== undefined && { blockHash: data.blockhash }),
    ...(data.blockheight !== undefined && { blockHeight: data.blockheight }),
    ...(data.blocktime !== undefined && { blockTime: data.blocktime }),
    outputs: data.vout.map((o) => ({ vout: o.n, satoshis: Math.round(o.value * SATOSHIS_PER_BSV), scriptHex: o.scriptPubKey.hex })),
  };
}

async function getRawTx(ctx: WocContext, txid: string): Promise<string | null> {
  const path = `/tx/${enc(txid)}/hex`;
  const res = await request(ctx, { method: 'GET', path });
  if (res.status === 404) return null;
  if (res.status !== 200) throw badRequest(ctx, 'GET', path, res);
  return res.body.trim().replace(/^"|"$/g, '');
}

async function getTxStatuses(ctx: WocContext, txids: string[]): Promise<WocTxStatus[]> {
  const statuses: WocTxStatus[] = [];
  for (let i = 0; i < txids.length; i += STATUS_BATCH) {
    const path = '/txs/status';
    const res = await request(ctx, { method: 'POST', path, json: { txids: txids.slice(i, i + STATUS_BATCH) } });
    if (res.status !== 200) throw badRequest(ctx, 'POST', path, res);
    for (const s of parse(statusSchema, res, path)) {
      const state = s.error !== undefined ? 'unknown' : s.blockhash !== undefined ? 'confirmed' : 'mempool';
      statuses.push({
        txid: s.txid,
        state,
        confirmations: state === 'confirmed' ? (s.confirmations ?? 0) : 0,
        ...(s.blockhash !== undefined && { blockHash: s.blockhash }),
        ...(s.blockheight !== undefined && { blockHeight: s.blockheight }),
      });
    }
  }
  return statuses;
}

async function broadcast(ctx: WocContext, rawTxHex: string): Promise<BroadcastResult> {
  if (!/^([0-9a-fA-F]{2})+$/.test(rawTxHex)) throw new RangeError('rawTxHex must be hex');
  const txid = Utils.toHex(Hash.hash256(Utils.toArray(rawTxHex, 'hex')).reverse());
  let res: Response;
  try {
    // A 5xx whose body carries a node verdict is that verdict, not a transport failure.
    res = await request(ctx, {
      method: 'POST',
      path: '/tx/raw',
      json: { txhex: rawTxHex },
      isVerdict: (status, body) => status >= 500 && classifyBroadcastReason(nodeReasonOf(body)).outcome !== 'other',
    });
  } catch (err) {
    if (err instanceof WocError && err.retryable) {
      return {
        outcome: 'retryable',
        txid,
        alreadyKnown: false,
        reason: err.message,
        ...(err.details.status && { httpStatus: err.details.status }),
      };
    }
    throw err;
  }
  if (res.status === 200) {
    const answered = nodeReasonOf(res.body);
    if (answered === txid) return { outcome: 'success', txid, alreadyKnown: false, httpStatus: 200 };
    return {
      outcome: 'other',
      txid,
      alreadyKnown: false,
      reason: `service answered txid ${scrub(ctx, answered.slice(0, 80))}`,
      httpStatus: 200,
    };
  }
  const reason = scrub(ctx, nodeReasonOf(res.body));
  return { ...classifyBroadcastReason(reason), txid, reason, httpStatus: res.status };
}

async function getChainInfo(ctx: WocContext): Promise<WocChainInfo> {
  const path = '/chain/info';
  const data = await get(ctx, path, chainInfoSchema);
  if (!data) throw new WocError('bad_request', `WOC GET ${path}: HTTP 404`, { method: 'GET', path, status: 404, attempts: 1 });
  return { chain: data.chain, blocks: data.blocks, headers: data.headers, bestBlockHash: data.bestblockhash };
}

async function getMerkleProof(ctx: WocContext, txid: string): Promise<TscProof | null> {
  const data = await get(ctx, `/tx/${enc(txid)}/proof/tsc`, proofSchema);
  return data?.[0] ?? null;
}

async function getBlockHeader(ctx: WocContext, hashOrHeight: string | number): Promise<WocBlockHeader | null> {
  const data = await get(ctx, `/block/${enc(String(hashOrHeight))}/header`, headerSchema);
  if (!data) return null;
  return {
    hash: data.hash,
    height: data.height,
    merkleRoot: data.merkleroot,
    confirmations: data.confirmations,
    time: data.time,
    ...(data.previousblockhash !== undefined && { previousBlockHash: data.previousblockhash }),
    ...(data.version !== undefined && { version: data.version >>> 0 }),
    ...(data.bits !== undefined && { bits: parseInt(data.bits, 16) }),
    ...(data.nonce !== undefined && { nonce: data.nonce >>> 0 }),
  };
}

async function getOutputSpend(ctx: WocContext, txid: string, vout: number): Promise<WocOutputSpend> {
  // WhatsOnChain's current path; the simulator also serves the legacy `out/{vout}/spend`.
  const data = await get(ctx, `/tx/${enc(txid)}/${vout}/spent`, spendSchema);
  if (!data) return { spent: false };
  return { spent: true, txid: data.txid, vin: data.vin, ...(data.status && { confirmed: data.status === 'confirmed' }) };
}

/**
 * The same client (same rate limiter), telling `onCall` of every call before it is made: how the API counts the
 * chain-service requests each caller makes (`patchproof_chain_requests_total{caller}`).
 */
export function attributedCalls(client: WocClient, onCall: (operation: WocOperation) => void): WocClient {
  return eachMethod(client, (name, method) => (...args) => {
    onCall(WOC_OPERATIONS[name]);
    return method(...args);
  });
}

function eachMethod(
  client: WocClient,
  wrap: (name: keyof WocClient, method: (...args: unknown[]) => Promise<unknown>) => (...args: unknown[]) => Promise<unknown>,
): WocClient {
  const names = Object.keys(WOC_OPERATIONS) as (keyof WocClient)[];
  return Object.fromEntries(
    names.map((name) => [name, wrap(name, (...args: unknown[]) => (client[name] as (...a: unknown[]) => Promise<unknown>)(...args))]),
  ) as unknown as WocClient;
}

/** The same client, reporting each call's outcome and duration. A broadcast the node refused still counts as answered. */
function observed(client: WocClient, observe: NonNullable<WocClientOptions['observe']>): WocClient {
  return eachMethod(client, (name, method) => {
    return async (...args: unknown[]) => {
      const started = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        const result = await method(...args);
        observe({ operation: WOC_OPERATIONS[name], outcome: 'success', seconds: seconds() });
        return result;
      } catch (err) {
        observe({ operation: WOC_OPERATIONS[name], outcome: err instanceof WocError ? err.kind : 'error', seconds: seconds() });
        throw err;
      }
    };
  });
}

/** The error code of a failed fetch (ECONNREFUSED, ECONNRESET…); never the request, which holds the headers. */
function networkDetail(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const name = (err as { name?: unknown } | undefined)?.name;
  return code ? `network error ${code}` : `network error ${typeof name === 'string' ? name : 'unknown'}`;
}

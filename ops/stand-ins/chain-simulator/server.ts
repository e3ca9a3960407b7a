import express, { type Express, type NextFunction, type Request, type Response, Router } from 'express';
import { LockingScript } from '@bsv/sdk';
import type { Logger } from '../../../src/logging/logger';
import { isNetwork, type Network, NETWORKS, p2pkhScriptHex, parseAddress, scriptHashOf } from './addresses';
import { FaultInjector, parseFaultUpdate } from './faults';
import { WOC_REJECTION_PREFIX } from './nodeReasons';
import { createSnapshotWriter, loadSnapshot, type SimulatorSnapshot } from './persistence';
import { type Block, ChainState } from './state';
import { DEFAULT_POLICY, validateTransaction, type ValidationPolicy } from './validation';
import { blockHeaderJson, chainInfoJson, legacyUnspentJson, txJson, txStatusJson, unspentResultJson } from './wocViews';

/**
 * A WhatsOnChain-compatible chain for dev and tests: `/v1/bsv/{main|test}/…` with WOC's paths, JSON shapes and
 * node error texts, one independent chain per network. Every broadcast is fully validated (validation.ts).
 */

export interface ChainSimulatorOptions {
  /** The network admin routes act on when a request names none. */
  network?: Network;
  /** Policy minimum fee rate; 1 sat/kB by default. */
  feeRateSatPerKb?: number;
  ancestorLimit?: number;
  /** Mine a block on every network at this interval; null or undefined mines only on request. */
  blockIntervalMs?: number | null;
  persistFile?: string;
  logger?: Logger;
  now?: () => number;
  /** Drives the fault rates; tests pass a deterministic source. */
  random?: () => number;
  /** Confirmed unspent outputs per page of `unspent/all` and `confirmed/unspent` (WOC pages at 1000). */
  confirmedUnspentPageSize?: number;
}

export interface ChainSimulator {
  app: Express;
  /** The chain of the default network. */
  state: ChainState;
  chains: Record<Network, ChainState>;
  faults: FaultInjector;
  policy: ValidationPolicy;
  mine(blocks?: number, network?: Network): Block[];
  /** Stops the block timer and writes the snapshot; the HTTP server belongs to the caller. */
  close(): Promise<void>;
}

const MAX_STATUS_TXIDS = 20;
const DEFAULT_CONFIRMED_PAGE_SIZE = 1000;

function pageToken(offset: number): string {
  return Buffer.from(`unspent:${offset}`).toString('base64url');
}

/** The offset a page token stands for: 0 without a token, null for a token this simulator did not issue. */
function pageOffset(token: unknown): number | null {
  if (token === undefined) return 0;
  if (typeof token !== 'string') return null;
  const match = /^unspent:(\d{1,9})$/.exec(Buffer.from(token, 'base64url').toString());
  return match ? Number(match[1]) : null;
}
const TXID = /^[0-9a-fA-F]{64}$/;

export function createChainSimulator(options: ChainSimulatorOptions = {}): ChainSimulator {
  const defaultNetwork = options.network ?? 'main';
  const now = options.now ?? Date.now;
  const logger = options.logger;
  const policy: ValidationPolicy = {
    ...DEFAULT_POLICY,
    ...(options.feeRateSatPerKb !== undefined && { feeRateSatPerKb: options.feeRateSatPerKb }),
    ...(options.ancestorLimit !== undefined && { ancestorLimit: options.ancestorLimit }),
  };
  const faults = new FaultInjector(options.random);

  const snapshot = (): SimulatorSnapshot => ({ version: 1, chains: { main: chains.main.toSnapshot(), test: chains.test.toSnapshot() } });
  const writer = options.persistFile
    ? createSnapshotWriter(options.persistFile, snapshot, { onError: (err) => logger?.error('snapshot write failed', { err }) })
    : undefined;
  const changed = () => writer?.schedule();
  const stored = options.persistFile ? loadSnapshot(options.persistFile) : undefined;
  const chains = Object.fromEntries(
    NETWORKS.map((network) => [
      network,
      stored ? ChainState.fromSnapshot(stored.chains[network], now, changed) : new ChainState(network, now, changed),
    ]),
  ) as Record<Network, ChainState>;

  const mine = (blocks = 1, network: Network = defaultNetwork): Block[] => {
    const mined = chains[network].mine(blocks);
    logger?.debug('mined', { network, blocks, height: chains[network].height });
    return mined;
  };

  const timer =
    options.blockIntervalMs && options.blockIntervalMs > 0
      ? setInterval(() => NETWORKS.forEach((network) => mine(1, network)), options.blockIntervalMs)
      : undefined;
  timer?.unref();

  const app = express();
  app.disable('x-powered-by');
  // Raw txs up to the 10 MB policy limit arrive as hex.
  app.use(express.json({ limit: '25mb' }));
  app.use(
    '/v1/bsv/:network',
    wocRoutes({ chains, faults, policy, logger, confirmedPageSize: options.confirmedUnspentPageSize ?? DEFAULT_CONFIRMED_PAGE_SIZE }),
  );
  app.use('/admin', adminRoutes({ chains, faults, defaultNetwork, mine, logger }));
  app.use((_req: Request, res: Response) => {
    res.status(404).type('text/plain').send('Not Found');
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status ?? 500;
    res
      .status(status)
      .type('text/plain')
      .send(status === 400 ? 'Bad Request' : 'Internal Server Error');
  });

  return {
    app,
    state: chains[defaultNetwork],
    chains,
    faults,
    policy,
    mine,
    close() {
      if (timer) clearInterval(timer);
      writer?.flush();
      return Promise.resolve();
    },
  };
}

interface WocDeps {
  chains: Record<Network, ChainState>;
  faults: FaultInjector;
  policy: ValidationPolicy;
  logger: Logger | undefined;
  confirmedPageSize: number;
}

function wocRoutes({ chains, faults, policy, logger, confirmedPageSize }: WocDeps): Router {
  const router = Router({ mergeParams: true });
  const chainOf = (req: Request): ChainState => chains[req.params.network as Network];
  const notFound = (res: Response) => res.status(404).type('text/plain').send('Not Found');

  router.use((req, res, next) => {
    if (!isNetwork(req.params.network)) return notFound(res);
    const fault = faults.nextRequest();
    const { latencyMs } = faults.settings;
    const respond = () => {
      if (fault.kind === '429') {
        res.status(429).set('Retry-After', String(fault.retryAfterSeconds)).type('text/plain').send('Too Many Requests');
      } else if (fault.kind === '5xx') {
        res.status(503).type('text/plain').send('Service Unavailable');
      } else {
        next();
      }
    };
    if (latencyMs > 0) setTimeout(respond, latencyMs);
    else respond();
  });

  // Addresses must belong to the network in the path.
  const addressScript = (req: Request, res: Response): string | undefined => {
    const parsed = parseAddress(String(req.params.address));
    if (!parsed || parsed.network !== req.params.network) {
      res.status(400).type('text/plain').send('Invalid address');
      return undefined;
    }
    return p2pkhScriptHex(parsed.pubKeyHash);
  };
  const txidParam = (req: Request, res: Response): string | undefined => {
    const txid = String(req.params.txid);
    if (!TXID.test(txid)) {
      res.status(400).type('text/plain').send('Invalid txid');
      return undefined;
    }
    return txid.toLowerCase();
  };

  router.get('/woc', (_req, res) => {
    res.type('text/plain').send('Whats On Chain');
  });
  router.get('/chain/info', (req, res) => {
    res.json(chainInfoJson(chainOf(req)));
  });
  router.get('/mempool/info', (req, res) => {
    const chain = chainOf(req);
    const bytes = chain.mempoolBytes;
    res.json({ size: chain.mempoolTxids.length, bytes, usage: bytes, maxmempool: 10_000_000_000, mempoolminfee: 0 });
  });
  router.get('/block/headers', (req, res) => {
    const chain = chainOf(req);
    res.json(
      chain.blocks
        .slice(-10)
        .reverse()
        .map((b) => blockHeaderJson(chain, b)),
    );
  });
  router.get('/block/:id/header', (req, res) => {
    const chain = chainOf(req);
    const block = chain.blockByHashOrHeight(String(req.params.id));
    if (!block) return notFound(res);
    res.json(blockHeaderJson(chain, block));
  });

  router.get('/address/:address/unspent', (req, res) => {
    const script = addressScript(req, res);
    if (script) res.json(legacyUnspentJson(chainOf(req).unspentForScript(script)));
  });
  // Like WOC: unconfirmed outputs all come on the first page; confirmed ones are paged, the rest reached through the
  // opaque `nextPageToken` passed back as `?token=`.
  const unspentVariant = (filter: (height: number) => boolean) => (req: Request, res: Response) => {
    const script = addressScript(req, res);
    if (!script) return;
    const offset = pageOffset(req.query.token);
    if (offset === null) return res.status(400).json('Invalid page token');
    const all = unspentResultJson(chainOf(req).unspentForScript(script)).filter((u) => filter(u.height));
    const unconfirmed = offset === 0 ? all.filter((u) => u.height === 0) : [];
    const confirmed = all
      .filter((u) => u.height > 0)
      .sort((a, b) => a.height - b.height || a.tx_hash.localeCompare(b.tx_hash) || a.tx_pos - b.tx_pos);
    const page = confirmed.slice(offset, offset + confirmedPageSize);
    const next = offset + page.length < confirmed.length ? pageToken(offset + page.length) : undefined;
    res.json({
      address: req.params.address,
      script: scriptHashOf(script),
      result: [...unconfirmed, ...page],
      error: '',
      ...(next && { nextPageToken: next }),
    });
  };
  router.get(
    '/address/:address/unspent/all',
    unspentVariant(() => true),
  );
  router.get(
    '/address/:address/confirmed/unspent',
    unspentVariant((h) => h > 0),
  );
  router.get(
    '/address/:address/unconfirmed/unspent',
    unspentVariant((h) => h === 0),
  );
  router.get('/script/:scriptHash/unspent/all', (req, res) => {
    const scriptHash = String(req.params.scriptHash).toLowerCase();
    const script = chainOf(req).scriptForHash(scriptHash);
    const result = script ? unspentResultJson(chainOf(req).unspentForScript(script)) : [];
    res.json({ script: scriptHash, result, error: '' });
  });

  const txDetails = (req: Request, res: Response) => {
    const txid = txidParam(req, res);
    if (!txid) return;
    const record = chainOf(req).visibleTx(txid);
    if (!record) return notFound(res);
    res.json(txJson(chainOf(req), record));
  };
  router.get('/tx/hash/:txid', txDetails);
  router.get('/tx/:txid', txDetails);
  router.get('/tx/:txid/hex', (req, res) => {
    const txid = txidParam(req, res);
    if (!txid) return;
    const record = chainOf(req).visibleTx(txid);
    if (!record) return notFound(res);
    res.type('text/plain').send(record.rawHex);
  });
  router.post('/txs/status', (req: Request, res: Response) => {
    const txids = (req.body as { txids?: unknown } | undefined)?.txids;
    if (!Array.isArray(txids) || txids.length > MAX_STATUS_TXIDS || !txids.every((t) => typeof t === 'string')) {
      return res.status(400).type('text/plain').send(`txids: an array of at most ${MAX_STATUS_TXIDS} txids`);
    }
    res.json(txids.map((txid) => txStatusJson(chainOf(req), txid.toLowerCase())));
  });

  // The legacy path (`out/{vout}/spend`), which older clients still call, and WOC's current one (`{vout}/spent`);
  // 404 while unspent.
  const spendOf = (req: Request, res: Response) => {
    const txid = txidParam(req, res);
    if (!txid) return;
    const vout = Number(req.params.vout);
    const spender = Number.isInteger(vout) && vout >= 0 ? chainOf(req).spenderOf(txid, vout) : undefined;
    if (!spender) return notFound(res);
    res.json({ txid: spender.txid, vin: spender.vin, status: spender.confirmed ? 'confirmed' : 'unconfirmed' });
  };
  router.get('/tx/:txid/out/:vout/spend', spendOf);
  router.get('/tx/:txid/:vout/spent', spendOf);

  router.get('/tx/:txid/proof/tsc', (req, res) => {
    const txid = txidParam(req, res);
    if (!txid) return;
    // Unknown and not-yet-mined txs alike have no proof.
    const proof = chainOf(req).tscProof(txid);
    if (!proof) return notFound(res);
    res.json([proof]);
  });

  router.post('/tx/raw', (req: Request, res: Response) => {
    const chain = chainOf(req);
    const txhex = (req.body as { txhex?: unknown } | undefined)?.txhex;
    const result = validateTransaction(txhex, chain.validationView(), policy);
    if (!result.ok) {
      logger?.debug('broadcast rejected', { network: chain.network, txid: result.txid, stage: result.stage, reason: result.reason });
      return res.status(400).json(`${WOC_REJECTION_PREFIX}${result.reason}`);
    }
    if (faults.forgetThisBroadcast()) {
      logger?.debug('broadcast forgotten (fault)', { network: chain.network, txid: result.txid });
      return res.json(result.txid);
    }
    chain.acceptToMempool(result.tx, result.fee, faults.settings.propagationLagMs);
    logger?.debug('broadcast accepted', { network: chain.network, txid: result.txid, fee: result.fee, size: result.size });
    if (faults.failAfterAccept()) return res.status(500).type('text/plain').send('Internal Server Error');
    res.json(result.txid);
  });

  router.use((_req, res) => notFound(res));
  return router;
}

interface AdminDeps {
  chains: Record<Network, ChainState>;
  faults: FaultInjector;
  defaultNetwork: Network;
  mine: (blocks?: number, network?: Network) => Block[];
  logger: Logger | undefined;
}

/**
 * Dev/test controls. They carry no authentication: the simulator is meant to listen on loopback only, and these
 * routes refuse any other peer so that binding it wider by mistake does not open them to the network.
 */
function adminRoutes({ chains, faults, defaultNetwork, mine, logger }: AdminDeps): Router {
  const router = Router();
  const badRequest = (res: Response, problems: string[]) => res.status(400).json({ problems });
  const networkOf = (body: Record<string, unknown>): Network | undefined =>
    body.network === undefined ? defaultNetwork : isNetwork(body.network) ? body.network : undefined;
  const bodyOf = (req: Request): Record<string, unknown> =>
    typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {};

  router.use((req, res, next) => {
    const peer = req.socket.remoteAddress ?? '';
    if (peer === '127.0.0.1' || peer === '::1' || peer === '::ffff:127.0.0.1') return next();
    res.status(403).type('text/plain').send('admin routes answer loopback clients only');
  });

  router.get('/status', (_req, res) => {
    res.json(
      Object.fromEntries(
        NETWORKS.map((n) => [n, { height: chains[n].height, bestblockhash: chains[n].tip.hash, mempool: chains[n].mempoolTxids }]),
      ),
    );
  });

  router.post('/mine', (req, res) => {
    const body = bodyOf(req);
    const network = networkOf(body);
    const blocks = body.blocks ?? 1;
    if (!network || typeof blocks !== 'number' || !Number.isInteger(blocks) || blocks < 1 || blocks > 1000) {
      return badRequest(res, ['blocks: a whole number from 1 to 1000; network: main or test']);
    }
    const mined = mine(blocks, network);
    res.json({ network, height: chains[network].height, blocks: mined.map((b) => ({ height: b.height, hash: b.hash, txids: b.txids })) });
  });

  router.post('/faucet', (req, res) => {
    const body = bodyOf(req);
    const parsed = typeof body.address === 'string' ? parseAddress(body.address) : undefined;
    const { satoshis } = body;
    const confirmed = body.confirmed ?? true;
    if (!parsed || typeof satoshis !== 'number' || !Number.isSafeInteger(satoshis) || satoshis < 1 || typeof confirmed !== 'boolean') {
      return badRequest(res, ['address: a P2PKH address (its prefix picks the network); satoshis: a whole number ≥ 1; confirmed: boolean']);
    }
    const chain = chains[parsed.network];
    const record = chain.fund(LockingScript.fromHex(p2pkhScriptHex(parsed.pubKeyHash)), satoshis, confirmed);
    logger?.debug('faucet', { network: parsed.network, txid: record.txid, satoshis, confirmed });
    res.json({
      txid: record.txid,
      vout: 0,
      satoshis,
      network: parsed.network,
      ...(record.blockHeight !== undefined && { blockHeight: record.blockHeight }),
    });
  });

  router.get('/faults', (_req, res) => {
    res.json(faults.settings);
  });
  router.put('/faults', (req, res) => {
    const parsed = parseFaultUpdate(req.body);
    if (!parsed.ok) return badRequest(res, parsed.problems);
    const settings = faults.update(parsed.update);
    logger?.info('faults updated', { faults: settings });
    res.json(settings);
  });
  router.delete('/faults', (_req, res) => {
    res.json(faults.reset());
  });

  router.post('/reorg', (req, res) => {
    const body = bodyOf(req);
    const network = networkOf(body);
    const drop = body.drop ?? [];
    if (!network || typeof body.depth !== 'number' || !Array.isArray(drop) || !drop.every((t) => typeof t === 'string')) {
      return badRequest(res, ['depth: number of blocks to disconnect; drop: txids to evict; network: main or test']);
    }
    try {
      const outcome = chains[network].reorg(body.depth, drop);
      logger?.info('reorg', { network, depth: body.depth, ...outcome });
      res.json({ network, height: chains[network].height, ...outcome });
    } catch (err) {
      badRequest(res, [(err as Error).message]);
    }
  });

  return router;
}

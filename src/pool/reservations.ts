import type { AnyBulkWriteOperation, Connection, Model } from 'mongoose';
import { bulkWriteInChunks, insertManyIgnoringDuplicates } from '../db/bulkWrites';
import {
  claimModel,
  outpointId,
  reservationModel,
  utxoModel,
  type ClaimDocument,
  type ReservationDocument,
  type UtxoDocument,
} from './models';

const CANDIDATES_PER_ATTEMPT = 50;

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number }).code === 11000;
}

/** True when every failure of an unordered bulk insert was a duplicate key (already claimed, already recorded). */
function onlyDuplicates(err: unknown): boolean {
  if (isDuplicateKey(err)) return true;
  const writeErrors = (err as { writeErrors?: { code?: number; err?: { code?: number } }[] }).writeErrors;
  const codes = writeErrors?.map((e) => e.code ?? e.err?.code);
  return codes !== undefined && codes.length > 0 && codes.every((c) => c === 11000);
}

/** Runs an unordered bulk insert; duplicates are expected, anything else is not. */
async function ignoringDuplicates(insert: Promise<unknown>): Promise<void> {
  try {
    await insert;
  } catch (err) {
    if (!onlyDuplicates(err)) throw err;
  }
}

export interface ReserveRequest {
  /** The reserving workflow's id: a retried activity of the same workflow gets the same UTXO back. */
  owner: string;
  /** Which of the owner's inputs this is (e.g. `anchor-input`); one UTXO per (owner, slot). */
  slot: string;
  keyIdentifier: string;
  minSatoshis: number;
  minConfirmations: number;
  chainHeight: number;
  /** `smallest` (default): the smallest adequate output. `largest`: for gathering several inputs. */
  order?: 'smallest' | 'largest';
  /** Locking script the output must have, e.g. only the funding address's outputs. */
  lockingScriptHex?: string;
  /** Outputs not to choose, e.g. the inputs of a transaction the node just refused. */
  excludeUtxoIds?: string[];
}

export interface ReleaseChecks {
  /** True once the owning workflow has closed (completed, failed, terminated, timed out). */
  isOwnerClosed(owner: string): Promise<boolean>;
  /** True when the chain shows the output unspent (confirmed or in the mempool). */
  isUnspentOnChain(txid: string, vout: number): Promise<boolean>;
}

export type ReleaseOutcome = 'released' | 'owner_running' | 'spent_on_chain' | 'not_reserved';

/**
 * The pool's reservation model, shared by anchoring and pool operations. Race-free on a Mongo-wire store without
 * transactions: a UTXO is claimed by inserting its outpoint into `utxo_claims`, and the (owner, slot) record is an
 * insert keyed by _id too, so of two concurrent attempts for the same UTXO or the same slot exactly one wins. Spent
 * outputs keep their claim, so they can never be claimed again.
 */
export function createReservations(connection: Connection) {
  const models: PoolModels = {
    utxos: utxoModel(connection),
    reservations: reservationModel(connection),
    claims: claimModel(connection),
  };
  return {
    /** The UTXO reserved for this (owner, slot), reserving the smallest adequate one if there is none yet. */
    reserve: (request: ReserveRequest): Promise<UtxoDocument | null> => reserve(models, request),
    /** Reserves these particular outputs for one owner (a sweep's inputs), each in its own slot. */
    reserveOutpoints: (owner: string, utxoIds: string[]): Promise<UtxoDocument[]> => reserveOutpoints(models, owner, utxoIds),
    /** Every output an owner holds, in slot order. */
    heldBy: (owner: string): Promise<UtxoDocument[]> => heldBy(models, owner),
    /** The owner gives back what it holds, when it knows it broadcast nothing that spends them. */
    giveBack: (owner: string): Promise<number> => giveBack(models, owner),
    /** Reservations oldest first, for the reconciler. */
    oldestReservations: (limit: number): Promise<{ owner: string; slot: string; utxo: UtxoDocument | null }[]> =>
      oldestReservations(models, limit),
    /** Drops the reservation record of an output that has been spent; the claim stays, so it is never reused. */
    forgetSpentReservation: async (owner: string, slot: string): Promise<void> => {
      await models.reservations.deleteOne({ _id: slotId(owner, slot) });
    },
    /**
     * Records that a broadcast transaction spent these outputs; idempotent. `owner`: the run that reserved them,
     * which lets the writes select its outputs by an indexed equality instead of one statement per output.
     */
    markSpent: (outpoints: { txid: string; vout: number }[], spendingTxid: string, owner?: string): Promise<void> =>
      markSpent(models, outpoints, spendingTxid, owner),
    /** Gives a reserved UTXO back only when its owner has closed and the chain shows it unspent. */
    release: (owner: string, slot: string, checks: ReleaseChecks): Promise<ReleaseOutcome> => release(models, owner, slot, checks),
    /**
     * Brings chain outputs into the pool. `knownLive`: every live output among them, when the caller has just read
     * them (a sync reads its address's live outputs anyway); otherwise they are read here.
     */
    ingest: (outputs: ChainOutput[], keyIdentifier: string, knownLive?: LiveOutput[]): Promise<{ added: number }> =>
      ingest(models, outputs, keyIdentifier, knownLive),
  };
}

export type Reservations = ReturnType<typeof createReservations>;

/** The three collections behind the reservation model. */
interface PoolModels {
  utxos: Model<UtxoDocument>;
  reservations: Model<ReservationDocument>;
  claims: Model<ClaimDocument>;
}

/** An output as the chain reports it, for `ingest`. */
type ChainOutput = { txid: string; vout: number; satoshis: number; lockingScriptHex: string; blockHeight: number | null };

/** What `ingest` compares a known live output by. */
export type LiveOutput = Pick<UtxoDocument, '_id' | 'blockHeight' | 'unseenSyncs'>;

function slotId(owner: string, slot: string): string {
  return `${owner}#${slot}`;
}

async function claim({ claims }: PoolModels, utxoId: string, owner: string, slot: string): Promise<boolean> {
  try {
    await claims.create({ _id: utxoId, owner, slot, claimedAt: new Date() });
    return true;
  } catch (err) {
    if (isDuplicateKey(err)) return false;
    throw err;
  }
}

/** The status field mirrors the claim for queries and health; the claim is what excludes other owners. */
async function markReserved({ utxos }: PoolModels, utxo: UtxoDocument, owner: string): Promise<UtxoDocument> {
  if (utxo.status === 'available') {
    await utxos.updateOne(
      { _id: utxo._id, status: 'available' },
      { $set: { status: 'reserved', reservedBy: owner, reservedAt: new Date() } },
    );
    return { ...utxo, status: 'reserved', reservedBy: owner };
  }
  return utxo;
}

/** Makes an output the owner has reserved available again; true when it was still reserved by that owner. */
async function unreserve({ utxos }: PoolModels, utxoId: string, owner: string): Promise<boolean> {
  const result = await utxos.updateOne(
    { _id: utxoId, status: 'reserved', reservedBy: owner },
    { $set: { status: 'available', reservedBy: null, reservedAt: null } },
  );
  return result.modifiedCount > 0;
}

async function existing(models: PoolModels, owner: string, slot: string): Promise<UtxoDocument | null> {
  const reservation = await models.reservations.findById(slotId(owner, slot)).lean();
  return reservation ? models.utxos.findById(reservation.utxoId).lean() : null;
}

/**
 * The outputs of these reservations, by id. FerretDB filters `$in` in memory over what the equality part of a
 * filter returns, so each owner's outputs are found by `reservedBy` (indexed); the few a reservation names but whose
 * mirror does not show the owner yet (a reserve cut short) are read by `_id`.
 */
async function utxosOf({ utxos }: PoolModels, held: { owner: string; utxoId: string }[]): Promise<Map<string, UtxoDocument>> {
  const byId = new Map<string, UtxoDocument>();
  const owners = new Map<string, string[]>();
  for (const r of held) owners.set(r.owner, [...(owners.get(r.owner) ?? []), r.utxoId]);
  for (const [owner, ids] of owners) {
    for (const d of await utxos.find({ reservedBy: owner, _id: { $in: ids } }).lean()) byId.set(d._id, d);
  }
  for (const r of held) {
    if (byId.has(r.utxoId)) continue;
    const doc = await utxos.findById(r.utxoId).lean();
    if (doc) byId.set(doc._id, doc);
  }
  return byId;
}

/** The UTXO reserved for this (owner, slot), reserving the smallest adequate one if there is none yet. */
async function reserve(models: PoolModels, request: ReserveRequest): Promise<UtxoDocument | null> {
  const held = await existing(models, request.owner, request.slot);
  if (held) return markReserved(models, held, request.owner);

  const candidates = await models.utxos
    .find({
      ...(request.excludeUtxoIds ? { _id: { $nin: request.excludeUtxoIds } } : {}),
      status: 'available',
      unseenSyncs: 0,
      keyIdentifier: request.keyIdentifier,
      satoshis: { $gte: request.minSatoshis },
      ...(request.lockingScriptHex && { lockingScriptHex: request.lockingScriptHex }),
      ...confirmedFilter(request.minConfirmations, request.chainHeight),
    })
    .sort({ satoshis: request.order === 'largest' ? -1 : 1, _id: 1 })
    .limit(CANDIDATES_PER_ATTEMPT)
    .lean();

  for (const candidate of candidates) {
    if (!(await claim(models, candidate._id, request.owner, request.slot))) continue; // another workflow got it first
    try {
      await models.reservations.create({
        _id: slotId(request.owner, request.slot),
        owner: request.owner,
        utxoId: candidate._id,
        createdAt: new Date(),
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      // A concurrent attempt for the same slot won: give our claim back and use theirs.
      await models.claims.deleteOne({ _id: candidate._id, owner: request.owner, slot: request.slot });
      const theirs = await existing(models, request.owner, request.slot);
      return theirs && markReserved(models, theirs, request.owner);
    }
    return markReserved(models, candidate, request.owner);
  }
  return null;
}

/**
 * Reserves these particular outputs for one owner (a sweep's inputs), each in its own slot. Outputs another
 * owner holds are skipped; a retry returns what the first attempt got. Every step is one command over the batch:
 * claims and reservation records are inserts, and the reads and the status update select by indexed equalities
 * (the owner, `status: 'available'`), so none of them scans the pool's history of spent outputs.
 */
async function reserveOutpoints({ utxos, reservations, claims }: PoolModels, owner: string, utxoIds: string[]): Promise<UtxoDocument[]> {
  if (utxoIds.length === 0) return [];
  const now = new Date();
  const claimed = await insertManyIgnoringDuplicates(
    claims,
    utxoIds.map((id) => ({ _id: id, owner, slot: `input:${id}`, claimedAt: now })),
  );
  // Without a duplicate every claim is this call's; otherwise some may be an earlier attempt's, or another owner's.
  const wanted = new Set(utxoIds);
  const ours =
    claimed.duplicateIndexes.length === 0
      ? utxoIds
      : (await claims.find({ owner }, { _id: 1 }).lean()).map((c) => c._id).filter((id) => wanted.has(id));
  if (ours.length === 0) return [];
  await insertManyIgnoringDuplicates(
    reservations,
    ours.map((id) => ({ _id: slotId(owner, `input:${id}`), owner, utxoId: id, createdAt: now })),
  );
  await utxos.updateMany({ status: 'available', _id: { $in: ours } }, { $set: { status: 'reserved', reservedBy: owner, reservedAt: now } });
  const oursSet = new Set(ours);
  return (await utxos.find({ reservedBy: owner, status: 'reserved' }).lean())
    .filter((u) => oursSet.has(u._id))
    .sort((a, b) => a.satoshis - b.satoshis || (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
}

/** Every output an owner holds, in slot order. */
async function heldBy(models: PoolModels, owner: string): Promise<UtxoDocument[]> {
  const held = await models.reservations.find({ owner }).sort({ _id: 1 }).lean();
  if (held.length === 0) return [];
  const byId = await utxosOf(models, held);
  return held.flatMap((r) => byId.get(r.utxoId) ?? []);
}

/**
 * The owner gives back what it holds, for when it knows it broadcast nothing that spends them (it stopped before
 * broadcasting, or the node rejected the transaction). Spent outputs stay spent, and keep their claims.
 * Claims go first: an output still marked reserved is offered to nobody, so a retry after a crash between the
 * steps finishes the job, and no claim is left behind on an output that is available again. Each step is one
 * command selected by an indexed equality (owner, status, reservedBy), whatever the number of outputs.
 */
async function giveBack({ utxos, reservations, claims }: PoolModels, owner: string): Promise<number> {
  const claimed = (await claims.find({ owner }, { _id: 1 }).lean()).map((c) => c._id);
  // Only claims on live outputs go: a spent output keeps its claim whoever recorded the spend.
  const live = claimed.length === 0 ? [] : await liveAmong(utxos, claimed, { _id: 1 });
  const releasable = live.map((u) => u._id);
  if (releasable.length > 0) await claims.deleteMany({ owner, _id: { $in: releasable } });
  const { modifiedCount } = await utxos.updateMany(
    { reservedBy: owner, status: 'reserved' },
    { $set: { status: 'available', reservedBy: null, reservedAt: null } },
  );
  await reservations.deleteMany({ owner });
  return modifiedCount;
}

/** Reservations oldest first, for the reconciler. */
async function oldestReservations(
  models: PoolModels,
  limit: number,
): Promise<{ owner: string; slot: string; utxo: UtxoDocument | null }[]> {
  const held = await models.reservations.find({}).sort({ createdAt: 1, _id: 1 }).limit(limit).lean();
  const byId = await utxosOf(models, held);
  return held.map((r) => ({ owner: r.owner, slot: r._id.slice(r.owner.length + 1), utxo: byId.get(r.utxoId) ?? null }));
}

/**
 * Records that a broadcast transaction spent these outputs; idempotent. Spent outputs stay claimed for ever.
 * The outputs `owner` reserved are written as a batch selected by the owner (indexed); any others (a sync's or the
 * reconciler's finding, an input the owner no longer holds) one statement each, by `_id`.
 */
async function markSpent(
  { utxos, reservations, claims }: PoolModels,
  outpoints: { txid: string; vout: number }[],
  spendingTxid: string,
  owner?: string,
): Promise<void> {
  const ids = [...new Set(outpoints.map((o) => outpointId(o.txid, o.vout)))];
  if (ids.length === 0) return;
  const wanted = new Set(ids);
  const spentBy = { $set: { status: 'spent' as const, spentBy: spendingTxid } };
  // The owner's batch is written beside the read of its claims; when it matched every output, the owner holds them
  // all and its outputs need no reading.
  const [ownClaims, batch] = owner
    ? await Promise.all([claims.find({ owner }, { _id: 1 }).lean(), utxos.updateMany({ reservedBy: owner, _id: { $in: ids } }, spentBy)])
    : [[], undefined];
  const claimedByOwner = new Set(ownClaims.map((c) => c._id).filter((id) => wanted.has(id)));
  // Claim the others, so they can never be reserved again; one claimed by someone else already is a duplicate.
  const unclaimed = ids.filter((id) => !claimedByOwner.has(id));
  if (unclaimed.length > 0) {
    await ignoringDuplicates(
      claims.insertMany(
        unclaimed.map((id) => ({ _id: id, owner: `spent:${spendingTxid}`, slot: 'spent', claimedAt: new Date() })),
        { ordered: false },
      ),
    );
  }
  const matched = batch?.matchedCount ?? 0;
  const held =
    matched === 0
      ? []
      : matched === ids.length
        ? ids
        : (await utxos.find({ reservedBy: owner }, { _id: 1 }).lean()).map((u) => u._id).filter((id) => wanted.has(id));
  const heldSet = new Set(held);
  const others = ids.filter((id) => !heldSet.has(id));
  await bulkWriteInChunks(
    utxos,
    others.map((id): AnyBulkWriteOperation<UtxoDocument> => ({ updateOne: { filter: { _id: id }, update: spentBy } })),
  );
  if (held.length > 0) await reservations.deleteMany({ owner, utxoId: { $in: held } });
  await bulkWriteInChunks(
    reservations,
    others.map((id): AnyBulkWriteOperation<ReservationDocument> => ({ deleteMany: { filter: { utxoId: id } } })),
  );
}

/**
 * Gives a reserved UTXO back only when its owner has closed and the chain shows it unspent. Nothing is ever
 * released by age: a slow workflow keeps what it holds.
 */
async function release(models: PoolModels, owner: string, slot: string, checks: ReleaseChecks): Promise<ReleaseOutcome> {
  const held = await existing(models, owner, slot);
  if (!held || held.status !== 'reserved' || held.reservedBy !== owner) return 'not_reserved';
  if (!(await checks.isOwnerClosed(owner))) return 'owner_running';
  if (!(await checks.isUnspentOnChain(held.txid, held.vout))) return 'spent_on_chain';
  await unreserve(models, held._id, owner);
  await models.reservations.deleteOne({ _id: slotId(owner, slot) });
  await models.claims.deleteOne({ _id: held._id, owner });
  return 'released';
}

/**
 * Brings chain outputs into the pool. New outputs arrive available; a known output keeps its status (sync never
 * revives a reserved or spent one) and only its block height is updated, so confirmations stay counted.
 * Known live outputs are read by status (indexed, and few beside the history of spent ones); the rest are inserted,
 * and an insert refused as a duplicate is an output already spent, whose height alone is brought up to date.
 */
async function ingest(
  { utxos }: PoolModels,
  outputs: ChainOutput[],
  keyIdentifier: string,
  knownLive?: LiveOutput[],
): Promise<{ added: number }> {
  if (outputs.length === 0) return { added: 0 };
  const ids = outputs.map((o) => outpointId(o.txid, o.vout));
  const live = new Map((knownLive ?? (await liveAmong(utxos, ids, { _id: 1, blockHeight: 1, unseenSyncs: 1 }))).map((u) => [u._id, u]));
  const fresh = outputs.filter((o) => !live.has(outpointId(o.txid, o.vout)));
  const { added, duplicates } = fresh.length > 0 ? await insertFresh(utxos, fresh, keyIdentifier) : { added: 0, duplicates: [] };
  // Writes only what changed: a sync mostly sees outputs it already knows at the height it knows.
  const changedByHeight = new Map<number | null, string[]>();
  for (const output of outputs) {
    const id = outpointId(output.txid, output.vout);
    const before = live.get(id);
    if (!before || (before.blockHeight === output.blockHeight && !before.unseenSyncs)) continue;
    changedByHeight.set(output.blockHeight, [...(changedByHeight.get(output.blockHeight) ?? []), id]);
  }
  for (const [blockHeight, changed] of changedByHeight) {
    for (const status of ['available', 'reserved'] as const) {
      await utxos.updateMany({ status, _id: { $in: changed } }, { $set: { blockHeight, unseenSyncs: 0 } });
    }
  }
  await bulkWriteInChunks(
    utxos,
    duplicates.map((o): AnyBulkWriteOperation<UtxoDocument> => ({
      updateOne: {
        filter: { _id: outpointId(o.txid, o.vout), blockHeight: { $ne: o.blockHeight } },
        update: { $set: { blockHeight: o.blockHeight } },
      },
    })),
  );
  return { added };
}

/** Up to this many ids, `liveAmong` reads each by `_id` rather than every live output. */
const FEW_IDS = 10;

/**
 * The pool's live (available or reserved) outputs among these ids. FerretDB filters `$in` in memory over what the
 * equality part of a filter returns: selected by status, that is the live outputs, not the history of spent ones.
 * A handful of ids (a transaction's new outputs) are read by `_id` instead, each a single indexed lookup.
 */
async function liveAmong(
  utxos: Model<UtxoDocument>,
  ids: string[],
  projection: Partial<Record<keyof UtxoDocument, 1>>,
): Promise<LiveOutput[]> {
  if (ids.length <= FEW_IDS) {
    const found = await Promise.all(ids.map((id) => utxos.findOne({ _id: id }, { ...projection, status: 1 }).lean()));
    return found.filter((u): u is NonNullable<typeof u> => u !== null && u.status !== 'spent');
  }
  const found = await Promise.all(
    (['available', 'reserved'] as const).map((status) => utxos.find({ status, _id: { $in: ids } }, projection).lean()),
  );
  return found.flat();
}

/**
 * Inserts outputs the pool did not know as available. Returns how many this call inserted, and the outputs refused
 * as duplicates: known already (spent, or inserted meanwhile by a concurrent ingest, whose documents stand).
 */
async function insertFresh(
  utxos: Model<UtxoDocument>,
  fresh: ChainOutput[],
  keyIdentifier: string,
): Promise<{ added: number; duplicates: ChainOutput[] }> {
  const documents: UtxoDocument[] = fresh.map((o) => ({
    _id: outpointId(o.txid, o.vout),
    txid: o.txid,
    vout: o.vout,
    satoshis: o.satoshis,
    lockingScriptHex: o.lockingScriptHex,
    keyIdentifier,
    status: 'available',
    blockHeight: o.blockHeight,
    // The schema's defaults, written out: the driver does not apply them.
    reservedBy: null,
    reservedAt: null,
    spentBy: null,
    unseenSyncs: 0,
  }));
  const { inserted, duplicateIndexes } = await insertManyIgnoringDuplicates(utxos, documents);
  return { added: inserted, duplicates: duplicateIndexes.map((i) => fresh[i]!) };
}

/** Outputs with at least `minConfirmations`, counted from their block height. */
export function confirmedFilter(minConfirmations: number, chainHeight: number): Record<string, unknown> {
  return minConfirmations > 0 ? { blockHeight: { $ne: null, $lte: chainHeight - minConfirmations + 1 } } : {};
}

/**
 * What the worker's pool gauges show after each change: count and satoshis of the live outputs, read by status
 * (indexed, few beside the history of spent outputs). Counting or summing that history means FerretDB decoding
 * every spent output on each spend (seconds at 100,000), so only `poolTotals` (the health snapshot) does.
 */
export async function livePoolTotals(mongo: Connection): Promise<Record<'available' | 'reserved', { count: number; satoshis: number }>> {
  const utxos = utxoModel(mongo);
  const live = async (status: 'available' | 'reserved') => {
    const rows = await utxos.find({ status }, { _id: 0, satoshis: 1 }).lean();
    return { count: rows.length, satoshis: rows.reduce((sum, r) => sum + r.satoshis, 0) };
  };
  const [available, reserved] = await Promise.all([live('available'), live('reserved')]);
  return { available, reserved };
}

/** Count and satoshis of the pool's outputs by status. */
export async function poolTotals(
  mongo: Connection,
): Promise<Record<'available' | 'reserved' | 'spent', { count: number; satoshis: number }>> {
  const rows = await utxoModel(mongo).aggregate<{ _id: string; count: number; satoshis: number }>([
    { $group: { _id: '$status', count: { $sum: 1 }, satoshis: { $sum: '$satoshis' } } },
  ]);
  const totals = { available: { count: 0, satoshis: 0 }, reserved: { count: 0, satoshis: 0 }, spent: { count: 0, satoshis: 0 } };
  for (const row of rows) {
    if (row._id in totals) totals[row._id as keyof typeof totals] = { count: row.count, satoshis: row.satoshis };
  }
  return totals;
}

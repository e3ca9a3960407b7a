import type { Connection, Model } from 'mongoose';
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
    /** Records that a broadcast transaction spent these outputs; idempotent. */
    markSpent: (outpoints: { txid: string; vout: number }[], spendingTxid: string): Promise<void> =>
      markSpent(models, outpoints, spendingTxid),
    /** Gives a reserved UTXO back only when its owner has closed and the chain shows it unspent. */
    release: (owner: string, slot: string, checks: ReleaseChecks): Promise<ReleaseOutcome> => release(models, owner, slot, checks),
    /** Brings chain outputs into the pool. */
    ingest: (outputs: ChainOutput[], keyIdentifier: string): Promise<{ added: number }> => ingest(models, outputs, keyIdentifier),
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

/** The outputs of these reservations, by id. */
async function utxosOf({ utxos }: PoolModels, held: { utxoId: string }[]): Promise<Map<string, UtxoDocument>> {
  const docs = await utxos.find({ _id: { $in: held.map((r) => r.utxoId) } }).lean();
  return new Map(docs.map((d) => [d._id, d]));
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
 * owner holds are skipped; a retry returns what the first attempt got. Claims go in one unordered batch.
 */
async function reserveOutpoints({ utxos, reservations, claims }: PoolModels, owner: string, utxoIds: string[]): Promise<UtxoDocument[]> {
  if (utxoIds.length === 0) return [];
  const now = new Date();
  await ignoringDuplicates(
    claims.insertMany(
      utxoIds.map((id) => ({ _id: id, owner, slot: `input:${id}`, claimedAt: now })),
      { ordered: false },
    ),
  );
  const ours = (await claims.find({ _id: { $in: utxoIds }, owner }, { _id: 1 }).lean()).map((c) => c._id);
  if (ours.length === 0) return [];
  await ignoringDuplicates(
    reservations.insertMany(
      ours.map((id) => ({ _id: slotId(owner, `input:${id}`), owner, utxoId: id, createdAt: now })),
      { ordered: false },
    ),
  );
  await utxos.updateMany({ _id: { $in: ours }, status: 'available' }, { $set: { status: 'reserved', reservedBy: owner, reservedAt: now } });
  return utxos
    .find({ _id: { $in: ours }, status: 'reserved', reservedBy: owner })
    .sort({ satoshis: 1, _id: 1 })
    .lean();
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
 * broadcasting, or the node rejected the transaction). Spent outputs stay spent.
 */
async function giveBack(models: PoolModels, owner: string): Promise<number> {
  const held = await models.reservations.find({ owner }).lean();
  let released = 0;
  for (const reservation of held) {
    if (await unreserve(models, reservation.utxoId, owner)) {
      await models.claims.deleteOne({ _id: reservation.utxoId, owner });
      released += 1;
    }
    await models.reservations.deleteOne({ _id: reservation._id });
  }
  return released;
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

/** Records that a broadcast transaction spent these outputs; idempotent. Spent outputs stay claimed for ever. */
async function markSpent(
  { utxos, reservations, claims }: PoolModels,
  outpoints: { txid: string; vout: number }[],
  spendingTxid: string,
): Promise<void> {
  const ids = outpoints.map((o) => outpointId(o.txid, o.vout));
  if (ids.length === 0) return;
  // Reserved inputs are claimed already; claim only the others, so they can never be reserved again.
  const claimed = new Set((await claims.find({ _id: { $in: ids } }, { _id: 1 }).lean()).map((c) => c._id));
  const unclaimed = ids.filter((id) => !claimed.has(id));
  if (unclaimed.length > 0) {
    await ignoringDuplicates(
      claims.insertMany(
        unclaimed.map((id) => ({ _id: id, owner: `spent:${spendingTxid}`, slot: 'spent', claimedAt: new Date() })),
        { ordered: false },
      ),
    );
  }
  await utxos.updateMany({ _id: { $in: ids } }, { $set: { status: 'spent', spentBy: spendingTxid } });
  await reservations.deleteMany({ utxoId: { $in: ids } });
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
 */
async function ingest({ utxos }: PoolModels, outputs: ChainOutput[], keyIdentifier: string): Promise<{ added: number }> {
  if (outputs.length === 0) return { added: 0 };
  const ids = outputs.map((o) => outpointId(o.txid, o.vout));
  // Writes only what changed: on a Mongo-wire store without bulk updates every written document costs a round
  // trip, and a sync mostly sees outputs it already knows at the height it knows.
  const known = new Map(
    (await utxos.find({ _id: { $in: ids } }, { _id: 1, blockHeight: 1, unseenSyncs: 1 }).lean()).map((u) => [u._id, u]),
  );
  const fresh = outputs.filter((o) => !known.has(outpointId(o.txid, o.vout)));
  const added = fresh.length > 0 ? await insertFresh(utxos, fresh, keyIdentifier) : 0;
  const changedByHeight = new Map<number | null, string[]>();
  for (const output of outputs) {
    const id = outpointId(output.txid, output.vout);
    const before = known.get(id);
    if (!before || (before.blockHeight === output.blockHeight && !before.unseenSyncs)) continue;
    changedByHeight.set(output.blockHeight, [...(changedByHeight.get(output.blockHeight) ?? []), id]);
  }
  for (const [blockHeight, changed] of changedByHeight) {
    await utxos.updateMany({ _id: { $in: changed } }, { $set: { blockHeight, unseenSyncs: 0 } });
  }
  return { added };
}

/** Inserts outputs the pool did not know as available; returns how many this call inserted. */
async function insertFresh(utxos: Model<UtxoDocument>, fresh: ChainOutput[], keyIdentifier: string): Promise<number> {
  try {
    return (
      await utxos.insertMany(
        fresh.map((o) => ({
          _id: outpointId(o.txid, o.vout),
          txid: o.txid,
          vout: o.vout,
          satoshis: o.satoshis,
          lockingScriptHex: o.lockingScriptHex,
          keyIdentifier,
          status: 'available' as const,
          blockHeight: o.blockHeight,
          unseenSyncs: 0,
        })),
        { ordered: false },
      )
    ).length;
  } catch (err) {
    // A concurrent ingest of the same outputs inserted some first: theirs stand, ours are duplicates.
    if (!onlyDuplicates(err)) throw err;
    return (err as { insertedDocs?: unknown[] }).insertedDocs?.length ?? 0;
  }
}

/** Outputs with at least `minConfirmations`, counted from their block height. */
export function confirmedFilter(minConfirmations: number, chainHeight: number): Record<string, unknown> {
  return minConfirmations > 0 ? { blockHeight: { $ne: null, $lte: chainHeight - minConfirmations + 1 } } : {};
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

import type { Connection } from 'mongoose';
import { claimModel, outpointId, reservationModel, utxoModel, type UtxoDocument } from './models';

const CANDIDATES_PER_ATTEMPT = 50;

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number }).code === 11000;
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
  const utxos = utxoModel(connection);
  const reservations = reservationModel(connection);
  const claims = claimModel(connection);
  const slotId = (owner: string, slot: string) => `${owner}#${slot}`;

  async function claim(utxoId: string, owner: string, slot: string): Promise<boolean> {
    try {
      await claims.create({ _id: utxoId, owner, slot, claimedAt: new Date() });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  /** The status field mirrors the claim for queries and health; the claim is what excludes other owners. */
  async function markReserved(utxo: UtxoDocument, owner: string): Promise<UtxoDocument> {
    if (utxo.status === 'available') {
      await utxos.updateOne(
        { _id: utxo._id, status: 'available' },
        { $set: { status: 'reserved', reservedBy: owner, reservedAt: new Date() } },
      );
      return { ...utxo, status: 'reserved', reservedBy: owner };
    }
    return utxo;
  }

  async function existing(owner: string, slot: string): Promise<UtxoDocument | null> {
    const reservation = await reservations.findById(slotId(owner, slot)).lean();
    return reservation ? utxos.findById(reservation.utxoId).lean() : null;
  }

  return {
    /** The UTXO reserved for this (owner, slot), reserving the smallest adequate one if there is none yet. */
    async reserve(request: ReserveRequest): Promise<UtxoDocument | null> {
      const held = await existing(request.owner, request.slot);
      if (held) return markReserved(held, request.owner);

      const maxHeight = request.minConfirmations > 0 ? request.chainHeight - request.minConfirmations + 1 : undefined;
      const candidates = await utxos
        .find({
          status: 'available',
          keyIdentifier: request.keyIdentifier,
          satoshis: { $gte: request.minSatoshis },
          ...(maxHeight !== undefined && { blockHeight: { $ne: null, $lte: maxHeight } }),
        })
        .sort({ satoshis: 1 })
        .limit(CANDIDATES_PER_ATTEMPT)
        .lean();

      for (const candidate of candidates) {
        if (!(await claim(candidate._id, request.owner, request.slot))) continue; // another workflow got it first
        try {
          await reservations.create({
            _id: slotId(request.owner, request.slot),
            owner: request.owner,
            utxoId: candidate._id,
            createdAt: new Date(),
          });
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
          // A concurrent attempt for the same slot won: give our claim back and use theirs.
          await claims.deleteOne({ _id: candidate._id, owner: request.owner, slot: request.slot });
          const theirs = await existing(request.owner, request.slot);
          return theirs && markReserved(theirs, request.owner);
        }
        return markReserved(candidate, request.owner);
      }
      return null;
    },

    /** Records that a broadcast transaction spent these outputs; idempotent. Spent outputs stay claimed for ever. */
    async markSpent(outpoints: { txid: string; vout: number }[], spendingTxid: string): Promise<void> {
      const ids = outpoints.map((o) => outpointId(o.txid, o.vout));
      for (const id of ids) await claim(id, `spent:${spendingTxid}`, 'spent');
      await utxos.updateMany({ _id: { $in: ids } }, { $set: { status: 'spent', spentBy: spendingTxid } });
    },

    /**
     * Gives a reserved UTXO back only when its owner has closed and the chain shows it unspent. Nothing is ever
     * released by age: a slow workflow keeps what it holds.
     */
    async release(owner: string, slot: string, checks: ReleaseChecks): Promise<ReleaseOutcome> {
      const held = await existing(owner, slot);
      if (!held || held.status !== 'reserved' || held.reservedBy !== owner) return 'not_reserved';
      if (!(await checks.isOwnerClosed(owner))) return 'owner_running';
      if (!(await checks.isUnspentOnChain(held.txid, held.vout))) return 'spent_on_chain';
      await utxos.updateOne(
        { _id: held._id, status: 'reserved', reservedBy: owner },
        { $set: { status: 'available', reservedBy: null, reservedAt: null } },
      );
      await reservations.deleteOne({ _id: slotId(owner, slot) });
      await claims.deleteOne({ _id: held._id, owner });
      return 'released';
    },

    /**
     * Brings chain outputs into the pool. New outputs arrive available; a known output keeps its status (sync never
     * revives a reserved or spent one) and only its block height is updated, so confirmations stay counted.
     */
    async ingest(
      outputs: { txid: string; vout: number; satoshis: number; lockingScriptHex: string; blockHeight: number | null }[],
      keyIdentifier: string,
    ): Promise<{ added: number }> {
      let added = 0;
      for (const output of outputs) {
        const result = await utxos.updateOne(
          { _id: outpointId(output.txid, output.vout) },
          {
            $set: { blockHeight: output.blockHeight },
            $setOnInsert: {
              txid: output.txid,
              vout: output.vout,
              satoshis: output.satoshis,
              lockingScriptHex: output.lockingScriptHex,
              keyIdentifier,
              status: 'available',
            },
          },
          { upsert: true },
        );
        added += result.upsertedCount;
      }
      return { added };
    },
  };
}

export type Reservations = ReturnType<typeof createReservations>;

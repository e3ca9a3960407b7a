import { createHmac, randomUUID } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { KmsClient } from '../kms/client';
import type { Logger } from '../logging/logger';
import type { Metrics } from '../metrics';
import { insertManyIgnoringDuplicates } from '../db/bulkWrites';
import { tagCounterClaimModel, tagModel, tapEventModel, type TagDocument, type TapOutcome } from './models';
import { sunMacMatches } from './sun';

/** What the MAC covers: nothing (SDMMACInputOffset = SDMMACOffset), or the URL text from PICCData to "&<cmac>=". */
export type TapMacInput = 'empty' | 'picc-data';

export interface TapSettings {
  /** KMS name of the tag master key. */
  keyIdentifier: string;
  macInput: TapMacInput;
  piccDataParam: string;
  cmacParam: string;
}

export interface TapDeps {
  mongo: Connection;
  kms: Pick<KmsClient, 'sunSession'>;
  settings: TapSettings;
  /** Key of the client-address hash; never stored beside the hashes. */
  ipHashKey: Buffer;
  metrics?: Pick<Metrics, 'taps'>;
  logger?: Logger;
}

export interface TapInput {
  /** As they appeared in the URL (the MAC input may cover the text as sent). */
  piccDataHex: string;
  macHex: string;
  clientIp: string;
  language: string | null;
  browser: boolean;
}

export interface TapResult {
  outcome: TapOutcome;
  tagUid: string | null;
  patchUid: string | null;
  counter: number | null;
}

/** A keyed hash: the same address gives the same value, and the value gives no address back without the key. */
export function clientIpHash(key: Buffer, ip: string): string {
  return createHmac('sha256', key).update(ip).digest('hex').slice(0, 32);
}

function macInputOf(settings: TapSettings, piccDataHex: string): Buffer {
  return settings.macInput === 'empty' ? Buffer.alloc(0) : Buffer.from(`${piccDataHex}&${settings.cmacParam}=`, 'ascii');
}

/** Claims a counter reading of a tag: true for the one request that inserts it, false for every other. */
async function claimCounter(mongo: Connection, tagUid: string, counter: number): Promise<boolean> {
  const { inserted } = await insertManyIgnoringDuplicates(tagCounterClaimModel(mongo), [{ _id: `${tagUid}:${counter}`, at: new Date() }]);
  return inserted === 1;
}

/**
 * One tap: the KMS opens the PICCData and gives each reading's session MAC key; the MAC is checked here in constant
 * time; a genuine tap then claims its counter reading (a unique `_id`, so of any number of concurrent taps of one URL
 * exactly one is authentic) and raises the tag's high-water mark (only a counter above it moves it). Every tap is
 * recorded and counted, whatever its outcome.
 */
export async function verifyTap(deps: TapDeps, input: TapInput): Promise<TapResult> {
  const tags = tagModel(deps.mongo);
  const mac = Buffer.from(input.macHex, 'hex');
  const macInput = macInputOf(deps.settings, input.piccDataHex);
  const candidates = await deps.kms.sunSession(deps.settings.keyIdentifier, input.piccDataHex.toLowerCase());

  let result: TapResult = { outcome: 'invalid-mac', tagUid: null, patchUid: null, counter: null };
  for (const candidate of candidates) {
    const tag: Pick<TagDocument, '_id' | 'patchUid' | 'keyVersion'> | null = await tags
      .findById(candidate.uidHex, { patchUid: 1, keyVersion: 1 })
      .lean();
    const genuine = await sunMacMatches(Buffer.from(candidate.sessionMacKeyHex, 'hex'), macInput, mac);
    if (!tag) {
      // Our key, but no patch holds the tag: a blank from the factory, or a tag never registered.
      if (genuine) result = { outcome: 'unknown-tag', tagUid: candidate.uidHex, patchUid: null, counter: candidate.readCounter };
      continue;
    }
    if (!genuine || tag.keyVersion !== candidate.version) {
      result = { outcome: 'invalid-mac', tagUid: tag._id, patchUid: tag.patchUid, counter: null };
      continue;
    }
    const fresh =
      (await claimCounter(deps.mongo, tag._id, candidate.readCounter)) &&
      // Below the high-water mark: a URL older than one already accepted, never presented until now.
      (
        await tags.updateOne(
          { _id: tag._id, counter: { $lt: candidate.readCounter } },
          { $set: { counter: candidate.readCounter, lastTapAt: new Date() } },
        )
      ).modifiedCount === 1;
    result = {
      outcome: fresh ? 'authentic' : 'replayed',
      tagUid: tag._id,
      patchUid: tag.patchUid,
      counter: candidate.readCounter,
    };
    break;
  }

  await tapEventModel(deps.mongo).create({
    _id: randomUUID(),
    at: new Date(),
    outcome: result.outcome,
    tagUid: result.tagUid,
    patchUid: result.patchUid,
    counter: result.counter,
    ipHash: clientIpHash(deps.ipHashKey, input.clientIp),
    language: input.language,
    browser: input.browser,
  });
  deps.metrics?.taps.inc({ outcome: result.outcome });
  deps.logger?.info('tag tapped', { outcome: result.outcome, tagUid: result.tagUid, patchUid: result.patchUid, counter: result.counter });
  return result;
}

/** Binds tags to patches at registration; a tag already bound to another patch is reported, never moved. */
export async function bindTags(
  mongo: Connection,
  bindings: { tagUid: string; patchUid: string; keyIdentifier: string; keyVersion: number }[],
): Promise<{ bound: TagDocument[]; conflicts: { tagUid: string; heldBy: string }[] }> {
  const tags = tagModel(mongo);
  const conflicts: { tagUid: string; heldBy: string }[] = [];
  const bound: TagDocument[] = [];
  for (const binding of bindings) {
    const stored = await tags
      .findOneAndUpdate(
        { _id: binding.tagUid },
        {
          $setOnInsert: {
            type: 'ntag424',
            patchUid: binding.patchUid,
            keyIdentifier: binding.keyIdentifier,
            keyVersion: binding.keyVersion,
            counter: -1,
            lastTapAt: null,
            createdAt: new Date(),
          },
        },
        { upsert: true, returnDocument: 'after' },
      )
      .lean()
      .catch(async (err: { code?: number }) => {
        // Two upserts of one new _id race: the loser's insert meets the winner's document.
        if (err.code !== 11000) throw err;
        return tags.findById(binding.tagUid).lean();
      });
    if (!stored) throw new Error(`tag ${binding.tagUid} could not be bound`);
    if (stored.patchUid !== binding.patchUid) conflicts.push({ tagUid: binding.tagUid, heldBy: stored.patchUid });
    else bound.push(stored);
  }
  return { bound, conflicts };
}

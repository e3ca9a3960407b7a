import { Schema, type Connection, type Model } from 'mongoose';

/**
 * A tag bound to a patch: one document per tag, keyed by its UID (upper-case hex), so the tap's counter update is an
 * `_id` equality, the one filter every Mongo-wire store (FerretDB included) pushes down.
 */
export interface TagDocument {
  _id: string;
  type: 'ntag424';
  patchUid: string;
  /** The KMS master key and version the tag's keys were diversified from. */
  keyIdentifier: string;
  keyVersion: number;
  /** The highest SDMReadCtr accepted so far; -1 before the first tap. */
  counter: number;
  lastTapAt: Date | null;
  createdAt: Date;
}

const tagSchema = new Schema<TagDocument>(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true, enum: ['ntag424'] },
    patchUid: { type: String, required: true },
    keyIdentifier: { type: String, required: true },
    keyVersion: { type: Number, required: true },
    counter: { type: Number, required: true },
    lastTapAt: { type: Date, default: null },
    createdAt: { type: Date, required: true },
  },
  { collection: 'tags', versionKey: false },
);
tagSchema.index({ patchUid: 1 });

export function tagModel(connection: Connection): Model<TagDocument> {
  return (connection.models.Tag as Model<TagDocument> | undefined) ?? connection.model<TagDocument>('Tag', tagSchema);
}

/**
 * One accepted reading of a tag's counter, keyed `<tag UID>:<counter>`: the unique `_id` makes the first of any
 * number of concurrent taps of one URL the only one to insert it, on every Mongo-wire store. (A conditional update
 * alone is not enough there: FerretDB reads the match and writes it in two steps, so two updates can both match.)
 */
export interface TagCounterClaimDocument {
  _id: string;
  at: Date;
}

const tagCounterClaimSchema = new Schema<TagCounterClaimDocument>(
  { _id: { type: String, required: true }, at: { type: Date, required: true } },
  { collection: 'tag_counter_claims', versionKey: false },
);

export function tagCounterClaimModel(connection: Connection): Model<TagCounterClaimDocument> {
  return (
    (connection.models.TagCounterClaim as Model<TagCounterClaimDocument> | undefined) ??
    connection.model<TagCounterClaimDocument>('TagCounterClaim', tagCounterClaimSchema)
  );
}

export type TapOutcome = 'authentic' | 'replayed' | 'invalid-mac' | 'unknown-tag';

/** One tap as recorded: coarse facts only. No raw IP (a keyed hash), no PICCData, no MAC. */
export interface TapEventDocument {
  _id: string;
  at: Date;
  outcome: TapOutcome;
  tagUid: string | null;
  patchUid: string | null;
  counter: number | null;
  /** HMAC-SHA256 of the client address under a server secret, truncated: counts repeat tappers without keeping who. */
  ipHash: string;
  /** Coarse client facts: the first language tag and whether the client asked for HTML. */
  language: string | null;
  browser: boolean;
}

const tapEventSchema = new Schema<TapEventDocument>(
  {
    _id: { type: String, required: true },
    at: { type: Date, required: true },
    outcome: { type: String, required: true, enum: ['authentic', 'replayed', 'invalid-mac', 'unknown-tag'] },
    tagUid: { type: String, default: null },
    patchUid: { type: String, default: null },
    counter: { type: Number, default: null },
    ipHash: { type: String, required: true },
    language: { type: String, default: null },
    browser: { type: Boolean, required: true },
  },
  { collection: 'tap_events', versionKey: false },
);
tapEventSchema.index({ tagUid: 1, at: 1 });

export function tapEventModel(connection: Connection): Model<TapEventDocument> {
  return (
    (connection.models.TapEvent as Model<TapEventDocument> | undefined) ?? connection.model<TapEventDocument>('TapEvent', tapEventSchema)
  );
}

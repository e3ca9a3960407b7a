import { Schema, type Connection, type Model } from 'mongoose';
import type { PoolSettings } from '../config';

/**
 * Run-time overrides of the pool settings: one document per setting, named as its environment variable. Every
 * pool run reads them afresh, so a change applies from the next run without a restart. Only numbers live here; keys
 * and addresses come from the environment alone, so a database write can never redirect funds.
 */
export const OVERRIDABLE_POOL_SETTINGS = {
  UTXO_MIN_POOL: { field: 'minPool', min: 1, max: 100_000 },
  UTXO_SPLIT_SIZE_SATS: { field: 'splitSizeSats', min: 1, max: 2_100_000_000_000_000 },
  MAX_SPLIT_OUTPUTS: { field: 'maxSplitOutputs', min: 1, max: 10_000 },
  DUST_THRESHOLD_SATS: { field: 'dustThresholdSats', min: 1, max: 100_000_000 },
  DUST_SWEEP_LIMIT: { field: 'dustSweepLimit', min: 1, max: 100_000 },
  UTXO_MIN_CONFIRMATIONS: { field: 'minConfirmations', min: 0, max: 100 },
  FEE_PER_KB: { field: 'feePerKb', min: 0, max: 100_000 },
  SWEEP_MAX_INPUTS: { field: 'sweepMaxInputs', min: 1, max: 10_000 },
  UTXO_CONFIRMATION_POLL_SECONDS: { field: 'confirmationPollSeconds', min: 1, max: 3_600 },
} as const satisfies Record<string, { field: keyof PoolSettings; min: number; max: number }>;

export type PoolSettingName = keyof typeof OVERRIDABLE_POOL_SETTINGS;

export function isPoolSettingName(name: string): name is PoolSettingName {
  return Object.prototype.hasOwnProperty.call(OVERRIDABLE_POOL_SETTINGS, name);
}

export interface SettingDocument {
  _id: string;
  value: number;
  updatedAt: Date;
  updatedBy: string;
}

const settingSchema = new Schema<SettingDocument>(
  {
    _id: { type: String, required: true },
    value: { type: Number, required: true },
    updatedAt: { type: Date, required: true },
    updatedBy: { type: String, required: true },
  },
  { collection: 'settings', versionKey: false },
);

export function settingModel(connection: Connection): Model<SettingDocument> {
  return (connection.models.Setting as Model<SettingDocument> | undefined) ?? connection.model<SettingDocument>('Setting', settingSchema);
}

export class InvalidSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidSettingError';
  }
}

function checkedValue(name: PoolSettingName, value: number): number {
  const rule = OVERRIDABLE_POOL_SETTINGS[name];
  const integer = name !== 'FEE_PER_KB';
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < rule.min || value > rule.max) {
    throw new InvalidSettingError(`${name} must be ${integer ? 'an integer' : 'a number'} from ${rule.min} to ${rule.max}`);
  }
  return value;
}

/** The environment's defaults with the stored overrides applied; an out-of-range stored value is ignored. */
export async function readPoolSettings(
  connection: Connection,
  defaults: PoolSettings,
  onIgnored?: (name: string, reason: string) => void,
): Promise<PoolSettings> {
  const settings: PoolSettings = { ...defaults };
  const stored = await settingModel(connection)
    .find({ _id: { $in: Object.keys(OVERRIDABLE_POOL_SETTINGS) } })
    .lean();
  for (const doc of stored) {
    if (!isPoolSettingName(doc._id)) continue;
    try {
      settings[OVERRIDABLE_POOL_SETTINGS[doc._id].field] = checkedValue(doc._id, doc.value);
    } catch (err) {
      onIgnored?.(doc._id, (err as Error).message);
    }
  }
  return settings;
}

export async function writePoolSetting(connection: Connection, name: string, value: number, updatedBy: string): Promise<void> {
  if (!isPoolSettingName(name)) throw new InvalidSettingError(`${name} is not a pool setting that can be changed at run time`);
  await settingModel(connection).replaceOne(
    { _id: name },
    { _id: name, value: checkedValue(name, value), updatedAt: new Date(), updatedBy },
    { upsert: true },
  );
}

export async function clearPoolSetting(connection: Connection, name: string): Promise<boolean> {
  if (!isPoolSettingName(name)) throw new InvalidSettingError(`${name} is not a pool setting that can be changed at run time`);
  return (await settingModel(connection).deleteOne({ _id: name })).deletedCount > 0;
}

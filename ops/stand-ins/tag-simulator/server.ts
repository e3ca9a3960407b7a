import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { z } from 'zod';
import { errorHandler, notFoundHandler } from '../../../api/errors';
import type { KmsClient } from '../../../src/kms/client';
import type { Logger } from '../../../src/logging/logger';
import { SimulatedTag, type TapUrlTemplate } from './tag';

/**
 * Tag simulator: NTAG 424 DNA tags in SUN mode for dev and tests. A tag's keys come from the KMS the way a factory
 * gets them (diversified per UID, never a master); counters are kept on disk, so a restart never lets a counter go
 * back, as on a real chip.
 *
 *   POST /tags/{uid}/taps?count=N   → {uid, keyVersion, taps:[{url, readCounter}]}
 *   GET  /tags/{uid}                → {uid, keyVersion, readCounter}
 *   GET  /health                    → {status:'ok'}
 */
export interface TagSimulatorOptions {
  kms: Pick<KmsClient, 'provisionTagKeys'>;
  keyIdentifier: string;
  template: TapUrlTemplate;
  /** Where counters are kept; none keeps them in memory. */
  dataDir?: string;
  logger?: Logger;
}

const uidParam = z.string().regex(/^[0-9a-fA-F]{14}$/, 'a 7-byte UID as 14 hex digits');
const MAX_TAPS_PER_REQUEST = 100;

export function createTagSimulator(options: TagSimulatorOptions) {
  const tags = new Map<string, Promise<{ tag: SimulatedTag; keyVersion: number }>>();
  const stateFile = options.dataDir && path.join(options.dataDir, 'counters.json');
  const saved: Record<string, number> =
    stateFile && existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, number>) : {};

  function persist(uid: string, counter: number): void {
    saved[uid] = counter;
    if (!stateFile) return;
    mkdirSync(path.dirname(stateFile), { recursive: true });
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(saved));
    renameSync(`${stateFile}.tmp`, stateFile);
  }

  /** The tag of a UID, provisioned on first use under the master's current version. */
  function tagOf(uidHex: string) {
    const uid = uidHex.toUpperCase();
    let entry = tags.get(uid);
    if (!entry) {
      entry = options.kms.provisionTagKeys(options.keyIdentifier, uid).then((keys) => ({
        tag: new SimulatedTag(uid, keys, saved[uid] ?? 0),
        keyVersion: keys.version,
      }));
      entry.catch(() => tags.delete(uid));
      tags.set(uid, entry);
    }
    return entry;
  }

  async function tap(uidHex: string, count = 1) {
    const { tag, keyVersion } = await tagOf(uidHex);
    const taps = [];
    for (let i = 0; i < count; i++) taps.push(await tag.tap(options.template));
    persist(tag.uidHex, tag.readCounter);
    return { uid: tag.uidHex, keyVersion, taps };
  }

  const app = express();
  app.disable('x-powered-by');
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/tags/:uid', async (req, res) => {
    const { tag, keyVersion } = await tagOf(uidParam.parse(req.params.uid));
    res.json({ uid: tag.uidHex, keyVersion, readCounter: tag.readCounter });
  });
  app.post('/tags/:uid/taps', async (req, res) => {
    const count = z.coerce.number().int().min(1).max(MAX_TAPS_PER_REQUEST).default(1).parse(req.query.count);
    res.json(await tap(uidParam.parse(req.params.uid), count));
  });
  app.use(notFoundHandler);
  app.use(errorHandler(options.logger ?? silent()));
  return { app, tap };
}

function silent(): Logger {
  // The error handler logs; a simulator without a logger keeps quiet.
  return { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Logger;
}

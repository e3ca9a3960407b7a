import { OP, Utils } from '@bsv/sdk';

/**
 * The anchor output: `OP_FALSE OP_RETURN <tag> <version> <root> <count>`. One format for batch and single mode
 * (a single record anchors a one-leaf tree, count = 1). The tag lets anyone find our anchors; the count is part of
 * the proof, since the tree's shape depends on it.
 */
export const ANCHOR_TAG = 'patchproof';
export const ANCHOR_VERSION = 1;

export interface AnchorPayload {
  root: string;
  count: number;
}

export function anchorPushes(payload: AnchorPayload): number[][] {
  if (!/^[0-9a-f]{64}$/.test(payload.root)) throw new RangeError('root must be 32 bytes of lower-case hex');
  if (!Number.isInteger(payload.count) || payload.count < 1 || payload.count > 0xffffffff) throw new RangeError('count out of range');
  const count = [(payload.count >>> 24) & 0xff, (payload.count >>> 16) & 0xff, (payload.count >>> 8) & 0xff, payload.count & 0xff];
  return [Utils.toArray(ANCHOR_TAG, 'utf8') as number[], [ANCHOR_VERSION], Utils.toArray(payload.root, 'hex') as number[], count];
}

/** Reads data pushes (direct, PUSHDATA1, PUSHDATA2); null on anything else. */
function readPushes(bytes: number[]): number[][] | null {
  const pushes: number[][] = [];
  let i = 0;
  while (i < bytes.length) {
    const op = bytes[i++]!;
    let length: number;
    if (op >= 1 && op <= 75) length = op;
    else if (op === OP.OP_PUSHDATA1 && i + 1 <= bytes.length) length = bytes[i++]!;
    else if (op === OP.OP_PUSHDATA2 && i + 2 <= bytes.length) {
      length = bytes[i]! + (bytes[i + 1]! << 8);
      i += 2;
    } else return null;
    if (i + length > bytes.length) return null;
    pushes.push(bytes.slice(i, i + length));
    i += length;
  }
  return pushes;
}

/**
 * Reads an anchor from a locking script (hex); null when the script is not one of ours. Parsed from the raw bytes:
 * script parsers treat everything after OP_RETURN as one opaque chunk.
 */
export function parseAnchorScript(lockingScriptHex: string): AnchorPayload | null {
  if (!/^([0-9a-f]{2})+$/i.test(lockingScriptHex)) return null;
  const bytes = Utils.toArray(lockingScriptHex, 'hex') as number[];
  if (bytes[0] !== OP.OP_FALSE || bytes[1] !== OP.OP_RETURN) return null;
  const pushes = readPushes(bytes.slice(2));
  if (!pushes || pushes.length !== 4) return null;
  const [tag, version, root, count] = pushes as [number[], number[], number[], number[]];
  if (Utils.toUTF8(tag) !== ANCHOR_TAG || version.length !== 1 || version[0] !== ANCHOR_VERSION) return null;
  if (root.length !== 32 || count.length !== 4) return null;
  const n = ((count[0]! << 24) >>> 0) + (count[1]! << 16) + (count[2]! << 8) + count[3]!;
  if (n < 1) return null;
  return { root: Utils.toHex(root), count: n };
}

#!/usr/bin/env node
/**
 * An independent verifier of PatchProof proof bundles, written from docs/PROOFS.md alone: it imports Node's built-in
 * modules and nothing else (no project module, no @bsv/sdk), and parses BEEF, BUMP, transactions and block headers
 * byte by byte as that page specifies them. A test holds its verdicts to those of `patchproof verify-proof`.
 *
 *   node test/independent-verifier/verify.mjs [--headers <file>] [--keys <directory file>] [--confirmations <n>] <bundle>…
 *
 * Prints one JSON line per bundle ({file, uid, status, reason?, unchecked?}); exits 0 when all are authentic,
 * 1 when one is invalid, pending or revoked-key, 5 when the worst is incomplete, 2 on usage errors.
 */
import { Buffer } from 'node:buffer';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------- hashing and byte order ("Conventions")

const sha256 = (bytes) => createHash('sha256').update(bytes).digest();
const hash256 = (bytes) => sha256(sha256(bytes));
const reversed = (bytes) => Buffer.from(bytes).reverse();
const display = (internal) => reversed(internal).toString('hex');
const isHex = (value, bytes) =>
  typeof value === 'string' && (bytes === undefined ? /^([0-9a-f]{2})+$/ : new RegExp(`^[0-9a-f]{${bytes * 2}}$`)).test(value);

class Invalid extends Error {}
const fail = (reason) => {
  throw new Invalid(reason);
};

/** Reads the byte layouts of docs/PROOFS.md: fixed fields, VarInts, and "nothing after them". */
class Reader {
  constructor(bytes, what) {
    this.bytes = bytes;
    this.at = 0;
    this.what = what;
  }
  take(n) {
    if (this.at + n > this.bytes.length) fail(`${this.what} ends early`);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u8() {
    return this.take(1)[0];
  }
  u32() {
    return this.take(4).readUInt32LE(0);
  }
  u64() {
    return this.take(8).readBigUInt64LE(0);
  }
  varint() {
    const first = this.u8();
    if (first < 0xfd) return first;
    if (first === 0xfd) return this.take(2).readUInt16LE(0);
    if (first === 0xfe) return this.u32();
    const big = this.u64();
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${this.what} has a VarInt too large`);
    return Number(big);
  }
  end() {
    if (this.at !== this.bytes.length) fail(`${this.what} has bytes after its end`);
  }
}

// ---------------------------------------------------------------- canonical JSON and the record tree

function canonicalJson(value) {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.normalize('NFC'));
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) fail('the record holds a number that is not a safe integer');
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k.normalize('NFC'))}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  fail('the record holds a value with no canonical form');
}

const canonicalBytes = (value) => Buffer.from(canonicalJson(value), 'utf8');
const leafOf = (h) => sha256(Buffer.concat([Buffer.from([0]), Buffer.from(h, 'hex')])).toString('hex');
const nodeOf = (l, r) => sha256(Buffer.concat([Buffer.from([1]), Buffer.from(l, 'hex'), Buffer.from(r, 'hex')])).toString('hex');

/** "The Merkle check": the path's shape comes from index and count alone; every step is used. */
function merkleCheck(hash, proof) {
  if (!proof || !Number.isInteger(proof.index) || !Number.isInteger(proof.count) || proof.index < 0 || proof.index >= proof.count)
    return false;
  if (!isHex(hash, 32) || !Array.isArray(proof.path)) return false;
  let current = leafOf(hash);
  if (current !== proof.leaf) return false;
  let position = proof.index;
  let width = proof.count;
  let step = 0;
  while (width > 1) {
    const sibling = position % 2 === 0 ? position + 1 : position - 1;
    if (sibling < width) {
      const next = proof.path[step++];
      const side = position % 2 === 0 ? 'R' : 'L';
      if (!next || next.side !== side || !isHex(next.hash, 32)) return false;
      current = side === 'R' ? nodeOf(current, next.hash) : nodeOf(next.hash, current);
    }
    position = Math.floor(position / 2);
    width = Math.ceil(width / 2);
  }
  return step === proof.path.length && current === proof.root;
}

// ---------------------------------------------------------------- ECDSA over secp256k1 (step 5)

const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const SPKI_PREFIX = Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex');

/** The S of a DER signature `30 len 02 len r 02 len s`, or null when it is not one. */
function derS(der) {
  try {
    const r = new Reader(der, 'the signature');
    if (r.u8() !== 0x30 || r.u8() !== der.length - 2) return null;
    if (r.u8() !== 0x02) return null;
    r.take(r.u8());
    if (r.u8() !== 0x02) return null;
    const s = r.take(r.u8());
    r.end();
    return BigInt(`0x${s.toString('hex') || '0'}`);
  } catch {
    return null;
  }
}

/** The signature verifies with the compressed key over sha256(preimage), the digest, as the message hash. */
function signatureVerifies(preimage, signatureHex, pubKeyHex, { lowS }) {
  if (!isHex(signatureHex) || !/^0[23][0-9a-f]{64}$/.test(pubKeyHex ?? '')) return false;
  const der = Buffer.from(signatureHex, 'hex');
  const s = derS(der);
  if (s === null || (lowS && s > ORDER / 2n)) return false;
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(pubKeyHex, 'hex')]), format: 'der', type: 'spki' });
    return verify('sha256', preimage, { key, dsaEncoding: 'der' }, der);
  } catch {
    return false;
  }
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Base58Check(version ‖ RIPEMD-160(SHA-256(compressed key))). */
function addressOf(pubKeyHex, network) {
  const payload = Buffer.concat([
    Buffer.from([network === 'main' ? 0x00 : 0x6f]),
    createHash('ripemd160')
      .update(sha256(Buffer.from(pubKeyHex, 'hex')))
      .digest(),
  ]);
  const bytes = Buffer.concat([payload, hash256(payload).subarray(0, 4)]);
  let n = BigInt(`0x${bytes.toString('hex')}`);
  let out = '';
  while (n > 0n) {
    out = BASE58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const byte of bytes) {
    if (byte !== 0) break;
    out = `1${out}`;
  }
  return out;
}

// ---------------------------------------------------------------- format 2: BEEF, BUMP, transaction, header

/** "The anchor transaction in BEEF": returns the raw tx bytes, the BUMP's height and the merkle root it leads to. */
function readBeef(beefHex, txid) {
  if (!isHex(beefHex)) fail('the anchor BEEF is not lower-case hex');
  const r = new Reader(Buffer.from(beefHex, 'hex'), 'the anchor BEEF');
  if (r.take(4).toString('hex') !== '01010101') fail('the anchor BEEF is not Atomic BEEF');
  if (display(r.take(32)) !== txid) fail('the anchor BEEF names another subject transaction');
  if (r.take(4).toString('hex') !== '0100beef') fail('the anchor BEEF is not BEEF version 1');
  if (r.varint() !== 1) fail('the anchor BEEF must hold one BUMP');
  const bump = readBump(r, txid);
  if (r.varint() !== 1) fail('the anchor BEEF must hold one transaction');
  const start = r.at;
  const outputs = readTransaction(r);
  const raw = r.bytes.subarray(start, r.at);
  if (r.u8() !== 1 || r.varint() !== 0) fail('the anchor BEEF holds a transaction without its BUMP');
  r.end();
  if (display(hash256(raw)) !== txid) fail('the anchor BEEF holds a transaction that does not hash to the txid');
  return { outputs, ...bump };
}

function readBump(r, txid) {
  const height = r.varint();
  const levels = r.u8();
  if (levels < 1) fail('the BUMP has no levels');
  const path = [];
  for (let level = 0; level < levels; level++) {
    const leaves = new Map();
    let previous = -1;
    for (let n = r.varint(); n > 0; n--) {
      const offset = r.varint();
      if (offset <= previous) fail('the BUMP leaves are not in increasing offset order');
      previous = offset;
      const flags = r.u8();
      if (flags & ~0x03) fail('the BUMP has a leaf with unknown flags');
      leaves.set(offset, flags & 0x01 ? { duplicate: true } : { txid: (flags & 0x02) !== 0, hash: r.take(32) });
    }
    path.push(leaves);
  }
  const own = [...path[0]].find(([, leaf]) => leaf.txid);
  if (!own || display(own[1].hash) !== txid) fail('the BUMP does not name the transaction');
  const index = own[0];
  let w = Buffer.from(own[1].hash);
  for (let h = 0; h < levels; h++) {
    const sibling = path[h].get((index >> h) ^ 1);
    if (!sibling) fail(`the BUMP has no sibling at level ${h}`);
    const s = sibling.duplicate ? w : sibling.hash;
    w = (index >> h) % 2 === 1 ? hash256(Buffer.concat([s, w])) : hash256(Buffer.concat([w, s]));
  }
  return { height, merkleRoot: display(w) };
}

/** The standard serialization; returns the outputs (satoshis, locking script). */
function readTransaction(r) {
  r.u32();
  for (let n = r.varint(); n > 0; n--) {
    r.take(36);
    r.take(r.varint());
    r.u32();
  }
  const outputs = [];
  for (let n = r.varint(); n > 0; n--) {
    const satoshis = r.u64();
    outputs.push({ satoshis, script: Buffer.from(r.take(r.varint())) });
  }
  r.u32();
  return outputs;
}

/** "The block header": 80 bytes, its hash, merkle root, time, and whether it meets the proof of work of its bits. */
function readHeader(headerHex) {
  if (!isHex(headerHex, 80)) fail('the block header is not 80 bytes of hex');
  const bytes = Buffer.from(headerHex, 'hex');
  const bits = bytes.readUInt32LE(72);
  const e = bits >>> 24;
  const m = bits & 0x007fffff;
  let target = null;
  if (!((bits & 0x00800000) !== 0 && m !== 0)) target = e <= 3 ? BigInt(m >>> (8 * (3 - e))) : BigInt(m) << BigInt(8 * (e - 3));
  const hash = display(hash256(bytes));
  return {
    hash,
    merkleRoot: display(bytes.subarray(36, 68)),
    time: bytes.readUInt32LE(68),
    work: target !== null && target > 0n && BigInt(`0x${hash}`) <= target,
  };
}

/** The anchor output: exactly four pushes after OP_FALSE OP_RETURN. */
function anchorOf(script) {
  if (script[0] !== 0x00 || script[1] !== 0x6a) return null;
  const pushes = [];
  for (let i = 2; i < script.length;) {
    const op = script[i++];
    let n;
    if (op >= 1 && op <= 75) n = op;
    else if (op === 0x4c && i + 1 <= script.length) n = script[i++];
    else if (op === 0x4d && i + 2 <= script.length) {
      n = script.readUInt16LE(i);
      i += 2;
    } else return null;
    if (i + n > script.length) return null;
    pushes.push(script.subarray(i, i + n));
    i += n;
  }
  if (pushes.length !== 4) return null;
  const [tag, version, root, count] = pushes;
  if (tag.toString('utf8') !== 'patchproof' || version.length !== 1 || version[0] !== 1 || root.length !== 32 || count.length !== 4)
    return null;
  return { root: root.toString('hex'), count: count.readUInt32BE(0) };
}

// ---------------------------------------------------------------- the steps

/** A headers file: `{format, network, headers}` or a bare array; by height. */
export function readHeadersFile(json) {
  const list = Array.isArray(json) ? json : json?.headers;
  if (!Array.isArray(list)) fail('not a headers file');
  const byHeight = new Map();
  for (const h of list) {
    const merkleRoot = (h.merkleRoot ?? h.merkleroot ?? '').toLowerCase();
    if (!Number.isInteger(h.height) || !isHex(String(h.hash).toLowerCase(), 32) || !isHex(merkleRoot, 32))
      fail('a header lacks height, hash or merkle root');
    const known = byHeight.get(h.height);
    if (known && (known.hash !== h.hash.toLowerCase() || known.merkleRoot !== merkleRoot)) fail(`two blocks at height ${h.height}`);
    byHeight.set(h.height, { hash: h.hash.toLowerCase(), merkleRoot });
  }
  return { network: Array.isArray(json) ? null : json.network, byHeight, tip: byHeight.size ? Math.max(...byHeight.keys()) : null };
}

/** Step 7: where the anchor tx is, from what the bundle carries (format 2). */
function anchorEvidence(anchor, headers) {
  const beef = readBeef(anchor.beef, anchor.txid);
  if (beef.height !== anchor.blockHeight) fail('the BUMP is for another block height than the anchor says');
  if (anchor.blockHeader === undefined) fail('the anchor carries no block header');
  const header = readHeader(anchor.blockHeader);
  if (header.merkleRoot !== beef.merkleRoot) fail("the BUMP does not lead to the block header's merkle root");
  if (!header.work) fail('the block header does not meet its proof of work');
  const evidence = { outputs: beef.outputs, blockTime: header.time, confirmations: null, unchecked: null };
  const known = headers?.byHeight.get(beef.height);
  if (!headers || !known) {
    evidence.unchecked = `block ${header.hash} at height ${beef.height}: ${headers ? 'the headers end before it' : 'no headers given'}`;
  } else if (known.hash !== header.hash || known.merkleRoot !== header.merkleRoot) {
    fail(`the block header is not the chain's block at height ${beef.height}`);
  } else {
    evidence.confirmations = headers.tip - beef.height + 1;
  }
  return evidence;
}

class Outcome extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

/** Steps 3 to 7 for one signed, anchored record; returns its confirmations (null: chain not checked) and what was not checked. */
function checkRecord(part, bundle, options) {
  if (sha256(canonicalBytes(part.record)).toString('hex') !== part.recordHash) fail('the record does not hash to recordHash');
  let signed = { hash: part.recordHash, preimage: canonicalBytes(part.record) };
  if (part.signedTreeHead) {
    const { treeHead, inclusion } = part.signedTreeHead;
    if (
      treeHead?.kind !== 'patchproof.tree-head' ||
      treeHead.v !== 1 ||
      treeHead.root !== inclusion?.root ||
      treeHead.size !== inclusion?.count
    ) {
      fail('the signed tree head does not match its inclusion path');
    }
    if (!merkleCheck(part.recordHash, inclusion)) fail('the inclusion path does not lead to the tree head');
    signed = { hash: sha256(canonicalBytes(treeHead)).toString('hex'), preimage: canonicalBytes(treeHead) };
  }
  const signature = part.issuerSignature ?? {};
  const key = options.keys?.find((k) => k.publicKey === signature.pubKeyHex);
  if (options.keys && !key) fail('signed by a key that is not in the key directory');
  if (!signatureVerifies(signed.preimage, signature.signatureDerHex, signature.pubKeyHex, { lowS: true }))
    fail('the issuer signature does not verify');
  if (!merkleCheck(signed.hash, part.anchor)) fail('the anchor path does not lead to the anchored root');
  const stated = [part.record.registeredAt, part.record.transferredAt, part.signedTreeHead?.treeHead.issuedAt]
    .filter((t) => typeof t === 'string' && !Number.isNaN(Date.parse(t)))
    .map(Date.parse);
  const revokedAt = key?.status === 'revoked' && key.revokedAt ? Date.parse(key.revokedAt) : null;
  if (revokedAt !== null && stated.some((t) => t >= revokedAt)) throw new Outcome('revoked-key', 'dated after its key was revoked');
  const evidence = anchorEvidence(part.anchor, options.headers);
  const output = evidence.outputs[part.anchor.vout];
  const anchored = output && anchorOf(output.script);
  if (!anchored || anchored.root !== part.anchor.root || anchored.count !== part.anchor.count)
    fail('the anchor output does not commit to the root');
  if (revokedAt !== null && evidence.blockTime * 1000 >= revokedAt) throw new Outcome('revoked-key', 'anchored after its key was revoked');
  if (evidence.confirmations !== null && evidence.confirmations < options.requiredConfirmations) {
    throw new Outcome('pending', `${evidence.confirmations} confirmations`);
  }
  return evidence;
}

/** Step 8's authorization of a transfer. */
function authorizationVerifies(record, uid, head, network) {
  const auth = record.authorization ?? {};
  if (auth.kind === 'owner-signature') {
    const message = {
      purpose: 'patchproof.transfer',
      uid,
      headTxid: head.txid,
      newOwner: String(record.to),
      nonce: auth.nonce,
      expiresAt: auth.expiresAt,
    };
    return (
      /^0[23][0-9a-f]{64}$/.test(auth.pubKeyHex ?? '') &&
      addressOf(auth.pubKeyHex, network) === head.owner &&
      signatureVerifies(canonicalBytes(message), auth.signatureDerHex, auth.pubKeyHex, { lowS: false })
    );
  }
  if (auth.kind === 'pos-claim') {
    const message = { purpose: 'patchproof.claim', uid, address: String(record.to), nonce: auth.nonce, expiresAt: auth.expiresAt };
    return (
      /^0[23][0-9a-f]{64}$/.test(auth.customerPubKeyHex ?? '') &&
      addressOf(auth.customerPubKeyHex, network) === String(record.to) &&
      signatureVerifies(canonicalBytes(message), auth.customerSignatureDerHex, auth.customerPubKeyHex, { lowS: false })
    );
  }
  return false;
}

/**
 * Verifies a format 2 bundle. `headers`: a parsed headers file, or undefined; `keys`: the key directory's keys, or
 * undefined to accept the bundle's key. Returns {status, reason?, unchecked?}.
 */
export function verifyBundle(bundle, { headers, keys, requiredConfirmations = 1 } = {}) {
  const options = { headers, keys, requiredConfirmations };
  try {
    if (bundle?.format !== 'patchproof-proof/2') fail(`not a format 2 bundle (${String(bundle?.format)})`);
    if (headers?.network && headers.network !== bundle.network) fail('the headers are for another network');
    if (bundle.record?.kind !== 'patchproof.registration' || bundle.record.uid !== bundle.uid)
      fail('the record is not the registration of this patch');
    const unchecked = [];
    const registration = checkRecord(bundle, bundle, options);
    if (registration.unchecked) unchecked.push(registration.unchecked);
    let head = { txid: bundle.anchor.txid, recordHash: bundle.recordHash, owner: String(bundle.record.initialOwner), seq: 0 };
    for (const transfer of bundle.transfers ?? []) {
      const r = transfer.record ?? {};
      if (r.kind !== 'patchproof.transfer' || r.uid !== bundle.uid || r.seq !== head.seq + 1)
        fail(`transfer ${head.seq + 1} is not the next transfer of this patch`);
      if (r.previous?.txid !== head.txid || r.previous?.recordHash !== head.recordHash || r.from !== head.owner)
        fail(`transfer ${r.seq} does not link to the record before it`);
      if (!authorizationVerifies(r, bundle.uid, head, bundle.network)) fail(`transfer ${r.seq}: its authorization does not verify`);
      const evidence = checkRecord(transfer, bundle, options);
      if (evidence.unchecked) unchecked.push(`transfer ${r.seq}: ${evidence.unchecked}`);
      head = { txid: transfer.anchor.txid, recordHash: transfer.recordHash, owner: String(r.to), seq: r.seq };
    }
    return unchecked.length > 0 ? { status: 'incomplete', unchecked } : { status: 'authentic', currentOwner: head.owner };
  } catch (err) {
    if (err instanceof Outcome) return { status: err.status, reason: err.message };
    if (err instanceof Invalid) return { status: 'invalid', reason: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------- command line

function main(argv) {
  const files = [];
  const options = { requiredConfirmations: 1 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--headers') options.headers = readHeadersFile(JSON.parse(readFileSync(argv[++i], 'utf8')));
    else if (arg === '--keys') options.keys = JSON.parse(readFileSync(argv[++i], 'utf8')).keys;
    else if (arg === '--confirmations') options.requiredConfirmations = Number(argv[++i]);
    else files.push(arg);
  }
  if (files.length === 0) {
    process.stderr.write('usage: verify.mjs [--headers <file>] [--keys <file>] [--confirmations <n>] <bundle>…\n');
    return 2;
  }
  const statuses = files.map((file) => {
    const bundle = JSON.parse(readFileSync(file, 'utf8'));
    const verdict = verifyBundle(bundle, options);
    process.stdout.write(`${JSON.stringify({ file, uid: bundle.uid, ...verdict })}\n`);
    return verdict.status;
  });
  if (statuses.some((s) => s !== 'authentic' && s !== 'incomplete')) return 1;
  return statuses.includes('incomplete') ? 5 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));

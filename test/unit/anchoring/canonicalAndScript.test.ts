import { anchorPushes, parseAnchorScript } from '../../../src/anchoring/anchorScript';
import { canonicalHash, canonicalJson, CanonicalFormError } from '../../../src/anchoring/canonical';
import { dataOutputScript } from '../../../src/chain/transactions';

describe('canonical JSON', () => {
  it('serialises the same value to the same bytes whatever the key order', () => {
    const a = { uid: 'PP-1', product: { name: 'Jacket', sku: 'J-1' }, tags: ['b', 'a'], n: 3, ok: true, none: null };
    const b = { none: null, ok: true, n: 3, tags: ['b', 'a'], product: { sku: 'J-1', name: 'Jacket' }, uid: 'PP-1' };
    expect(canonicalJson(a)).toBe('{"n":3,"none":null,"ok":true,"product":{"name":"Jacket","sku":"J-1"},"tags":["b","a"],"uid":"PP-1"}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
    expect(canonicalHash(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(canonicalHash({ ...a, n: 4 })).not.toBe(canonicalHash(a));
  });

  it('normalises strings to NFC and leaves out undefined members', () => {
    expect(canonicalJson({ name: 'Cafe\u0301' })).toBe(canonicalJson({ name: 'Café' }));
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });

  it('refuses values without one unambiguous form', () => {
    expect(() => canonicalJson({ price: 1.5 })).toThrow(CanonicalFormError);
    expect(() => canonicalJson({ big: 2 ** 60 })).toThrow(/safe integers/);
    expect(() => canonicalJson({ when: new Date() as never })).toThrow(/plain objects/);
    expect(() => canonicalJson({ 'e\u0301': 1, é: 2 })).toThrow(/same after NFC/);
  });
});

describe('anchor script', () => {
  it('round-trips the root and count through a real OP_FALSE OP_RETURN script', () => {
    const root = 'ab'.repeat(32);
    for (const count of [1, 2, 255, 256, 65_537, 0xffffffff]) {
      const script = dataOutputScript(anchorPushes({ root, count })).toHex();
      expect(parseAnchorScript(script)).toEqual({ root, count });
    }
  });

  it('does not mistake other data outputs for anchors', () => {
    const other = dataOutputScript([Array.from(Buffer.from('PatchProofBatch')), new Array<number>(32).fill(1)]).toHex();
    expect(parseAnchorScript(other)).toBeNull();
    expect(parseAnchorScript('zz')).toBeNull();
    expect(() => anchorPushes({ root: 'AB'.repeat(32), count: 1 })).toThrow(RangeError);
    expect(() => anchorPushes({ root: 'ab'.repeat(32), count: 0 })).toThrow(RangeError);
  });
});

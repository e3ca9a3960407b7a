import crypto from 'node:crypto';
import { createApiKeyVerifier } from '../../api/middleware/apiKey';

const KEY = 'correct-key-0123456789';

describe('API key verifier', () => {
  afterEach(() => jest.restoreAllMocks());

  it('accepts exactly the configured key', () => {
    expect(createApiKeyVerifier(KEY)(KEY)).toBe(true);
  });

  it('rejects an absent key', () => {
    expect(createApiKeyVerifier(KEY)(undefined)).toBe(false);
  });

  // A compare that returns early on a length mismatch leaks the key length through timing. Booleans
  // alone cannot tell the two apart, so this watches the comparison itself: every candidate, whatever its length
  // (the empty one included), must reach one timingSafeEqual of two 32-byte buffers, the same expected buffer each time.
  it('compares every candidate length, the empty one included, through one fixed-size constant-time comparison', () => {
    const compare = jest.spyOn(crypto, 'timingSafeEqual');
    const verify = createApiKeyVerifier(KEY);
    const candidates = [
      '',
      ...Array.from({ length: KEY.length * 2 + 1 }, (_, n) => 'x'.repeat(n + 1)),
      KEY.slice(0, -1),
      `${KEY}0`,
      `${KEY} `,
      KEY.toUpperCase(),
      'é'.repeat(KEY.length),
      KEY,
    ];
    const expectedSides = new Set<string>();
    for (const candidate of candidates) {
      compare.mockClear();
      expect(verify(candidate)).toBe(candidate === KEY);
      expect(compare).toHaveBeenCalledTimes(1);
      const [presented, expected] = compare.mock.calls[0]!;
      expect(presented.byteLength).toBe(32);
      expect(expected.byteLength).toBe(32);
      expectedSides.add(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength).toString('hex'));
    }
    expect(expectedSides.size).toBe(1);
    // The configured key itself is never what is compared.
    expect([...expectedSides][0]).not.toBe(Buffer.from(KEY).toString('hex'));
  });
});

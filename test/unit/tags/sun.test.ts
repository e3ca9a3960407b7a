import {
  decryptPiccData,
  encryptPiccData,
  parsePiccData,
  sessionMacKey,
  sunMac,
  sunMacMatches,
  verifySunMessage,
} from '../../../src/tags/sun';
import { diversifyAes128, fleetMetaReadKey, tagFileReadKey } from '../../../src/tags/diversify';

const hex = (s: string) => Buffer.from(s, 'hex');
const ZERO_KEY = Buffer.alloc(16);

/** Flips one bit of a copy. */
function flipped(bytes: Buffer, byte: number, bit = 0): Buffer {
  const copy = Buffer.from(bytes);
  copy[byte]! ^= 1 << bit;
  return copy;
}

/*
 * NXP AN12196 "NTAG 424 DNA and NTAG 424 DNA TagTamper features and hints" (Rev. 1.5, 30 July 2019), section 4.4.4.2,
 * SUN message with PICCData and SDMMAC, SDMMACInputOffset = SDMMACOffset (empty MAC input), all keys zero:
 *   https://…/424?picc_data=EF963FF7828658A599F3041510671E88&cmac=94EED9EE65337086
 *   decrypted PICCData C704DE5F1EACC0403D0000DA5CF60941: PICCDataTag C7, UID 04DE5F1EACC040, SDMReadCtr 3D0000 (61)
 *   SV2 3CC30001008004DE5F1EACC0403D0000, KSesSDMFileReadMAC 3FB5F6E3A807A03D5E3570ACE393776F
 */
const EXAMPLE_EMPTY_INPUT = {
  piccData: hex('EF963FF7828658A599F3041510671E88'),
  plain: 'c704de5f1eacc0403d0000da5cf60941',
  uidHex: '04DE5F1EACC040',
  readCounter: 0x3d,
  sessionKey: '3fb5f6e3a807a03d5e3570ace393776f',
  mac: hex('94EED9EE65337086'),
};

/*
 * AN12196 Rev. 1.5, section 4.4.4.2.2: the same settings with SDMMACInputOffset before SDMMACOffset, the MAC input
 * being the URL text from the encrypted file data to "&cmac=" (ASCII):
 *   picc_data=FD91EC264309878BE6345CBE53BADF40, UID 04958CAA5C5E80, SDMReadCtr 080000 (8),
 *   KSesSDMFileReadMAC 3ED0920E5E6A0320D823D5987FEAFBB1, MAC input "CEE9A53E3E463EF1F459635736738962&cmac=",
 *   SDMMAC ECC1E7F6C6C73BF6
 */
const EXAMPLE_WITH_INPUT = {
  piccData: hex('FD91EC264309878BE6345CBE53BADF40'),
  uidHex: '04958CAA5C5E80',
  readCounter: 8,
  sessionKey: '3ed0920e5e6a0320d823d5987feafbb1',
  macInput: Buffer.from('CEE9A53E3E463EF1F459635736738962&cmac=', 'ascii'),
  mac: hex('ECC1E7F6C6C73BF6'),
};

const zeroKeys = { sdmMetaReadKey: ZERO_KEY, sdmFileReadKey: ZERO_KEY };

describe('SUN message verification against NXP AN12196', () => {
  it('decrypts the published PICCData to the published UID and counter', () => {
    const plain = decryptPiccData(ZERO_KEY, EXAMPLE_EMPTY_INPUT.piccData);
    expect(plain.toString('hex')).toBe(EXAMPLE_EMPTY_INPUT.plain);
    const parsed = parsePiccData(plain);
    expect(parsed).toMatchObject({ ok: true, picc: { uidHex: EXAMPLE_EMPTY_INPUT.uidHex, readCounter: EXAMPLE_EMPTY_INPUT.readCounter } });
  });

  it('derives the published session MAC key from SV2 and verifies the published SDMMAC (empty MAC input)', async () => {
    const session = await sessionMacKey(ZERO_KEY, EXAMPLE_EMPTY_INPUT.uidHex, EXAMPLE_EMPTY_INPUT.readCounter);
    expect(session.toString('hex')).toBe(EXAMPLE_EMPTY_INPUT.sessionKey);
    expect((await sunMac(session, Buffer.alloc(0))).equals(EXAMPLE_EMPTY_INPUT.mac)).toBe(true);
    await expect(
      verifySunMessage(zeroKeys, { piccData: EXAMPLE_EMPTY_INPUT.piccData, mac: EXAMPLE_EMPTY_INPUT.mac }),
    ).resolves.toMatchObject({
      outcome: 'valid',
      picc: { uidHex: EXAMPLE_EMPTY_INPUT.uidHex, readCounter: 61 },
    });
  });

  it('verifies the published SDMMAC computed over a MAC input', async () => {
    const result = await verifySunMessage(zeroKeys, {
      piccData: EXAMPLE_WITH_INPUT.piccData,
      mac: EXAMPLE_WITH_INPUT.mac,
      macInput: EXAMPLE_WITH_INPUT.macInput,
    });
    expect(result).toMatchObject({ outcome: 'valid', picc: { uidHex: EXAMPLE_WITH_INPUT.uidHex, readCounter: 8 } });
    const session = await sessionMacKey(ZERO_KEY, EXAMPLE_WITH_INPUT.uidHex, EXAMPLE_WITH_INPUT.readCounter);
    expect(session.toString('hex')).toBe(EXAMPLE_WITH_INPUT.sessionKey);
  });

  it('refuses every one-bit change of the PICCData', async () => {
    for (let byte = 0; byte < 16; byte++) {
      for (const bit of [0, 7]) {
        const result = await verifySunMessage(zeroKeys, {
          piccData: flipped(EXAMPLE_EMPTY_INPUT.piccData, byte, bit),
          mac: EXAMPLE_EMPTY_INPUT.mac,
        });
        expect({ byte, bit, outcome: result.outcome }).not.toEqual({ byte, bit, outcome: 'valid' });
      }
    }
  });

  it('refuses every one-bit change of the MAC', async () => {
    for (let byte = 0; byte < 8; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const result = await verifySunMessage(zeroKeys, {
          piccData: EXAMPLE_EMPTY_INPUT.piccData,
          mac: flipped(EXAMPLE_EMPTY_INPUT.mac, byte, bit),
        });
        expect(result.outcome).toBe('invalid-mac');
      }
    }
  });

  it('refuses a one-bit change of the MAC input, of either key, and a MAC of the wrong length', async () => {
    const { piccData, mac, macInput } = EXAMPLE_WITH_INPUT;
    for (let byte = 0; byte < macInput.length; byte += 7) {
      expect((await verifySunMessage(zeroKeys, { piccData, mac, macInput: flipped(macInput, byte) })).outcome).toBe('invalid-mac');
    }
    expect((await verifySunMessage({ ...zeroKeys, sdmFileReadKey: flipped(ZERO_KEY, 15) }, { piccData, mac, macInput })).outcome).toBe(
      'invalid-mac',
    );
    expect((await verifySunMessage({ ...zeroKeys, sdmMetaReadKey: flipped(ZERO_KEY, 0) }, { piccData, mac, macInput })).outcome).not.toBe(
      'valid',
    );
    expect(await sunMacMatches(hex(EXAMPLE_WITH_INPUT.sessionKey), macInput, mac.subarray(0, 7))).toBe(false);
  });

  it('refuses a one-bit change of the UID or of the counter after decryption', async () => {
    const { uidHex, readCounter, mac } = EXAMPLE_EMPTY_INPUT;
    const otherUid = (parseInt(uidHex.slice(-2), 16) ^ 1).toString(16).padStart(2, '0');
    const uidSession = await sessionMacKey(ZERO_KEY, uidHex.slice(0, -2) + otherUid, readCounter);
    expect(await sunMacMatches(uidSession, Buffer.alloc(0), mac)).toBe(false);
    const counterSession = await sessionMacKey(ZERO_KEY, uidHex, readCounter ^ 1);
    expect(await sunMacMatches(counterSession, Buffer.alloc(0), mac)).toBe(false);
  });

  it('reads back what a tag writes: encrypt, then decrypt and parse', () => {
    const key = hex('00112233445566778899aabbccddeeff');
    const encrypted = encryptPiccData(key, '04A1B2C3D4E5F6', 0x012345, Buffer.alloc(5, 7));
    expect(parsePiccData(decryptPiccData(key, encrypted))).toMatchObject({
      ok: true,
      picc: { uidHex: '04A1B2C3D4E5F6', readCounter: 0x012345 },
    });
  });

  it('refuses PICCData without counter mirroring or with another UID length', () => {
    expect(parsePiccData(hex('8704de5f1eacc0403d0000da5cf60941'))).toEqual({ ok: false, problem: 'no_counter_mirror' });
    expect(parsePiccData(hex('c404de5f1eacc0403d0000da5cf60941'))).toEqual({ ok: false, problem: 'unsupported_uid_length' });
    expect(parsePiccData(hex('c704de'))).toEqual({ ok: false, problem: 'wrong_length' });
  });
});

describe('AN10922 AES-128 key diversification', () => {
  /*
   * NXP AN10922 "Symmetric key diversifications", section 2.2.1 (AES-128 key diversification example): master key
   * 00112233445566778899AABBCCDDEEFF, UID 04782E21801D80, AID 3042F5, system identifier "NXP Abu" (4E585020416275)
   * → diversified key A8DD63A3B89D54B37CA802473FDA9175.
   */
  it('gives the published diversified key', async () => {
    const key = await diversifyAes128(hex('00112233445566778899AABBCCDDEEFF'), hex('04782E21801D803042F54E585020416275'));
    expect(key.toString('hex')).toBe('a8dd63a3b89d54b37ca802473fda9175');
  });

  it('gives each tag its own file-read key, and each master its own keys', async () => {
    const master = hex('00112233445566778899AABBCCDDEEFF');
    const a = await tagFileReadKey(master, '04A1B2C3D4E5F6');
    const b = await tagFileReadKey(master, '04A1B2C3D4E5F7');
    const c = await tagFileReadKey(flipped(master, 0), '04A1B2C3D4E5F6');
    expect(new Set([a, b, c, await fleetMetaReadKey(master)].map((k) => k.toString('hex'))).size).toBe(4);
  });
});

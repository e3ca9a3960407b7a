import { PrivateKey } from '@bsv/sdk';
import { anchorPushes } from '../../../src/anchoring/anchorScript';
import { merkleProofAt } from '../../../src/anchoring/merkle';
import { dataOutputScript } from '../../../src/chain/transactions';
import { buildKeyDirectory, issuerKeyPolicy, type IssuerKeyDirectory } from '../../../src/issuerKeys/directory';
import type { IssuerKeyRevocationDocument } from '../../../src/issuerKeys/models';
import { registrationRecord, registrationRecordHash } from '../../../src/registration/record';
import { checkProofBundle, PROOF_BUNDLE_FORMAT, type ProofBundle } from '../../../src/registration/proofBundle';
import type { RotationKeyDocument } from '../../../src/rotation/models';
import type { WocClient, WocTx } from '../../../src/woc/client';
import { LocalSigner } from '../../support/localSigner';

const pub = (seed: string) => `02${seed.repeat(64).slice(0, 64)}`;

const rotated = (keyIdentifier: string, state: RotationKeyDocument['state'], extra: Partial<RotationKeyDocument> = {}) =>
  ({
    _id: `issuer:${keyIdentifier}`,
    purpose: 'issuer',
    keyIdentifier,
    state,
    pubKeyHex: pub(keyIdentifier.slice(-1)),
    address: null,
    sealedSecret: null,
    rotationId: 'kms-rotation-issuer@r1',
    activatedAt: null,
    retiredAt: null,
    updatedAt: new Date('2026-01-01T00:00:00Z'),
    ...extra,
  }) satisfies RotationKeyDocument;

const revocation = (pubKeyHex: string, kid: string, revokedAt: string, reason = 'exposed'): IssuerKeyRevocationDocument => ({
  _id: pubKeyHex,
  kid,
  revokedAt: new Date(revokedAt),
  reason,
  requests: [],
  updatedAt: new Date(revokedAt),
});

describe('the issuer key directory', () => {
  it('lists the environment’s key before any rotation, as the active key since before the key settings', () => {
    const directory = buildKeyDirectory({ keys: [], revocations: [] }, { kid: 'issuer', pubKeyHex: pub('1') });
    expect(directory).toEqual({
      format: 'patchproof-keys/1',
      keys: [
        {
          kid: 'issuer',
          publicKey: pub('1'),
          status: 'active',
          validFrom: null,
          validUntil: null,
          revokedAt: null,
          revocationReason: null,
        },
      ],
    });
  });

  it('ends a rotated-out key at its successor’s activation, leaves cancelled keys out, and lists a staged key as active', () => {
    const keys = [
      rotated('issuer-1', 'retired', { activatedAt: new Date('2026-01-01T00:00:00Z'), retiredAt: new Date('2026-02-08T00:00:00Z') }),
      rotated('issuer-2', 'previous', { activatedAt: new Date('2026-02-01T00:00:00Z') }),
      rotated('issuer-3', 'active', { activatedAt: new Date('2026-03-01T00:00:00Z') }),
      rotated('issuer-4', 'cancelled'),
      rotated('issuer-5', 'staged', { updatedAt: new Date('2026-03-05T00:00:00Z') }),
      // Another process's JWT and funding keys never appear.
      { ...rotated('funding-6', 'active'), purpose: 'funding' as const, _id: 'funding:funding-6' },
    ];
    const directory = buildKeyDirectory({ keys, revocations: [] }, { kid: 'issuer-3', pubKeyHex: pub('3') });
    expect(directory.keys.map((k) => [k.kid, k.status, k.validFrom, k.validUntil])).toEqual([
      ['issuer-1', 'retired', '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z'],
      ['issuer-2', 'retired', '2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z'],
      ['issuer-3', 'active', '2026-03-01T00:00:00.000Z', null],
      ['issuer-5', 'active', '2026-03-05T00:00:00.000Z', null],
    ]);
  });

  it('publishes a revocation with its time and reason under every identifier of the key, and ends the key’s validity there', () => {
    const keys = [
      rotated('issuer-1', 'retired', { activatedAt: new Date('2026-01-01T00:00:00Z') }),
      rotated('issuer-2', 'active', { activatedAt: new Date('2026-03-01T00:00:00Z') }),
    ];
    const directory = buildKeyDirectory(
      { keys, revocations: [revocation(pub('1'), 'issuer-1', '2026-02-15T00:00:00Z', 'laptop stolen')] },
      { kid: 'issuer-2', pubKeyHex: pub('2') },
    );
    expect(directory.keys[0]).toEqual({
      kid: 'issuer-1',
      publicKey: pub('1'),
      status: 'revoked',
      validFrom: '2026-01-01T00:00:00.000Z',
      validUntil: '2026-02-15T00:00:00.000Z',
      revokedAt: '2026-02-15T00:00:00.000Z',
      revocationReason: 'laptop stolen',
    });
    const policy = issuerKeyPolicy(directory);
    expect([...policy.accepted]).toEqual([pub('1'), pub('2')]);
    expect(policy.revoked.get(pub('1'))).toEqual({ kid: 'issuer-1', revokedAt: '2026-02-15T00:00:00.000Z', reason: 'laptop stolen' });
  });
});

describe('verifying a record signed by a revoked key', () => {
  const signer = new LocalSigner();
  const REVOKED_AT = '2026-02-15T00:00:00.000Z';
  const at = (iso: string) => Math.floor(Date.parse(iso) / 1000);

  async function bundle(registeredAt: string): Promise<ProofBundle> {
    const record = registrationRecord(
      { product: { uid_tag_id: 'PP-REV-1', name: 'Jacket' }, auth: { owner: '1Owner' } },
      new Date(registeredAt),
    );
    const recordHash = registrationRecordHash(record);
    const [signature] = await signer.sign([{ keyIdentifier: 'issuer-1', digestHex: recordHash }]);
    const proof = merkleProofAt([recordHash], 0);
    return {
      format: PROOF_BUNDLE_FORMAT,
      network: 'test',
      uid: 'PP-REV-1',
      record,
      recordHash,
      issuerSignature: { ...signature!, keyIdentifier: 'issuer-1' },
      anchor: { ...proof, txid: 'ab'.repeat(32), vout: 0, blockHeight: 100 },
      transfers: [],
    };
  }

  /** The chain as a test needs it: the anchor mined at `blockTime` (seconds), in the mempool (`mempool`), or unknown. */
  const chainWith = (b: ProofBundle, tx: { blockTime: number } | 'mempool' | null): Pick<WocClient, 'getTx'> => ({
    getTx: (): Promise<WocTx | null> =>
      Promise.resolve(
        tx && {
          txid: b.anchor.txid,
          size: 250,
          confirmations: tx === 'mempool' ? 0 : 6,
          ...(tx !== 'mempool' && { blockHeight: 100, blockTime: tx.blockTime }),
          outputs: [{ vout: 0, satoshis: 0, scriptHex: dataOutputScript(anchorPushes({ root: b.anchor.root, count: 1 })).toHex() }],
        },
      ),
  });

  function directoryRevoking(): IssuerKeyDirectory {
    const publicKey = signer.key('issuer-1').toPublicKey().toString();
    return buildKeyDirectory(
      { keys: [rotated('issuer-1', 'retired', { pubKeyHex: publicKey })], revocations: [revocation(publicKey, 'issuer-1', REVOKED_AT)] },
      { kid: 'issuer-2', pubKeyHex: PrivateKey.fromRandom().toPublicKey().toString() },
    );
  }

  it('keeps a record signed and anchored before the revocation authentic', async () => {
    const b = await bundle('2026-02-01T00:00:00Z');
    const verdict = await checkProofBundle(b, {
      woc: chainWith(b, { blockTime: at('2026-02-01T00:10:00Z') }),
      requiredConfirmations: 1,
      issuerKeys: issuerKeyPolicy(directoryRevoking()),
    });
    expect(verdict.status).toBe('authentic');
  });

  it('answers revoked-key for a record that dates itself after the revocation, without asking the chain', async () => {
    const b = await bundle('2026-02-20T00:00:00Z');
    const getTx = jest.fn(chainWith(b, { blockTime: at('2026-02-20T00:10:00Z') }).getTx);
    const verdict = await checkProofBundle(b, {
      woc: { getTx },
      requiredConfirmations: 1,
      issuerKeys: issuerKeyPolicy(directoryRevoking()),
    });
    expect(verdict).toMatchObject({
      status: 'revoked-key',
      revokedKey: { kid: 'issuer-1', revokedAt: REVOKED_AT, seq: 0, claimedAt: '2026-02-20T00:00:00Z', anchoredAt: null },
    });
    expect(getTx).not.toHaveBeenCalled();
  });

  it('answers revoked-key for a backdated record whose anchor was mined after the revocation', async () => {
    // What a thief of the key would make: a record dated before the revocation, signed and anchored after it.
    const b = await bundle('2026-02-01T00:00:00Z');
    const verdict = await checkProofBundle(b, {
      woc: chainWith(b, { blockTime: at('2026-03-01T00:00:00Z') }),
      requiredConfirmations: 1,
      issuerKeys: issuerKeyPolicy(directoryRevoking()),
    });
    expect(verdict).toMatchObject({ status: 'revoked-key', revokedKey: { anchoredAt: '2026-03-01T00:00:00.000Z' } });
    expect((verdict as { reason: string }).reason).toMatch(/anchored only after that/);
  });

  it('answers revoked-key, not pending, for a record of a revoked key whose anchor is in no block', async () => {
    const b = await bundle('2026-02-01T00:00:00Z');
    for (const chain of [chainWith(b, null), chainWith(b, 'mempool')]) {
      const verdict = await checkProofBundle(b, { woc: chain, requiredConfirmations: 1, issuerKeys: issuerKeyPolicy(directoryRevoking()) });
      expect(verdict).toMatchObject({ status: 'revoked-key', revokedKey: { anchoredAt: null } });
    }
  });

  it('refuses a key the directory does not list at all', async () => {
    const b = await bundle('2026-02-01T00:00:00Z');
    const other = buildKeyDirectory(
      { keys: [], revocations: [] },
      { kid: 'issuer-2', pubKeyHex: PrivateKey.fromRandom().toPublicKey().toString() },
    );
    const verdict = await checkProofBundle(b, {
      woc: chainWith(b, { blockTime: at('2026-02-01T00:10:00Z') }),
      requiredConfirmations: 1,
      issuerKeys: issuerKeyPolicy(other),
    });
    expect(verdict).toEqual({ status: 'invalid', reason: 'signed by a key other than the issuer key' });
  });
});

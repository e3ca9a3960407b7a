import jwt from 'jsonwebtoken';
import { createTokenKeyring } from '../../../src/auth/tokens';
import type { PoolConfig } from '../../../src/config';
import { isRotationWorkflowId, kmsRotationWorkflowId } from '../../../src/rotation/ids';
import { jwtKeysState, livePoolConfig, sealJwtSecret, unsealJwtSecret, type KeyringSnapshot } from '../../../src/rotation/keyring';
import type { KeyState, RotationKeyDocument } from '../../../src/rotation/models';

const pool: PoolConfig = {
  fundingKeyIdentifier: 'funding',
  fundingAddress: 'mfundingAddressFromTheEnvironment',
  changeKeyIdentifier: 'funding',
  defaults: {
    minPool: 10,
    splitSizeSats: 5000,
    maxSplitOutputs: 40,
    dustThresholdSats: 2000,
    dustSweepLimit: 20,
    minConfirmations: 1,
    feePerKb: 100,
    sweepMaxInputs: 1000,
    confirmationPollSeconds: 30,
  },
  topUpEvery: null,
  sweepCron: null,
  reconcileEvery: null,
  scheduleTimezone: 'UTC',
  healthCacheMs: 0,
};

const key = (purpose: RotationKeyDocument['purpose'], keyIdentifier: string, state: KeyState, extra: Partial<RotationKeyDocument> = {}) =>
  ({
    _id: `${purpose}:${keyIdentifier}`,
    purpose,
    keyIdentifier,
    state,
    pubKeyHex: null,
    address: null,
    sealedSecret: null,
    rotationId: 'r@1',
    activatedAt: null,
    retiredAt: null,
    updatedAt: new Date(0),
    ...extra,
  }) satisfies RotationKeyDocument;

const snapshot = (active: KeyringSnapshot['active'], keys: RotationKeyDocument[]): KeyringSnapshot => ({
  readAt: 0,
  active,
  keys,
  revocations: [],
});

describe('key settings: which key is active, which keys verify', () => {
  it('keeps the environment pool until the funding key is rotated, then uses the new key and its recorded address for funding and change', () => {
    expect(livePoolConfig(pool, snapshot({}, []))).toBe(pool);
    const rotated = livePoolConfig(
      pool,
      snapshot({ funding: 'funding-2' }, [key('funding', 'funding-2', 'active', { address: 'mNewFundingAddress' })]),
    );
    expect(rotated).toMatchObject({
      fundingKeyIdentifier: 'funding-2',
      fundingAddress: 'mNewFundingAddress',
      changeKeyIdentifier: 'funding-2',
      changeAddress: 'mNewFundingAddress',
    });
  });

  it('leaves a separate change key alone when the funding key rotates', () => {
    const separate = { ...pool, changeKeyIdentifier: 'change', changeAddress: 'mChangeAddress' };
    const rotated = livePoolConfig(
      separate,
      snapshot({ funding: 'funding-2' }, [key('funding', 'funding-2', 'active', { address: 'mNew' })]),
    );
    expect(rotated).toMatchObject({
      fundingKeyIdentifier: 'funding-2',
      fundingAddress: 'mNew',
      changeKeyIdentifier: 'change',
      changeAddress: 'mChangeAddress',
    });
  });

  it('seals a JWT secret bound to its kid: it opens under the same JWT_SECRET and kid only', () => {
    const sealed = sealJwtSecret('the-secret', 'jwt-secret-one', 'k2');
    expect(sealed).not.toContain('the-secret');
    expect(unsealJwtSecret(sealed, 'jwt-secret-one', 'k2')).toBe('the-secret');
    expect(() => unsealJwtSecret(sealed, 'jwt-secret-two', 'k2')).toThrow();
    expect(() => unsealJwtSecret(sealed, 'jwt-secret-one', 'k3')).toThrow();
  });

  it('merges the environment keyring with rotated kids: staged kids verify, the active kid signs, retired kids stop verifying', () => {
    const env = { keys: { 'jwt-1': 'env-secret-1', other: 'env-secret-2' }, activeKid: 'jwt-1' };
    const sealed = sealJwtSecret('rotated-secret', 'wrap', 'jwt-2');
    const staged = jwtKeysState(env, snapshot({}, [key('jwt', 'jwt-2', 'staged', { sealedSecret: sealed })]), 'wrap');
    expect(staged).toEqual({ keys: { 'jwt-1': 'env-secret-1', other: 'env-secret-2', 'jwt-2': 'rotated-secret' }, activeKid: 'jwt-1' });

    const retired = jwtKeysState(
      env,
      snapshot({ jwt: 'jwt-2' }, [key('jwt', 'jwt-2', 'active', { sealedSecret: sealed }), key('jwt', 'jwt-1', 'retired')]),
      'wrap',
    );
    expect(retired).toEqual({ keys: { other: 'env-secret-2', 'jwt-2': 'rotated-secret' }, activeKid: 'jwt-2' });

    // A secret that cannot be opened (another JWT_SECRET) is reported and never made active.
    const unopened: string[] = [];
    const wrongWrap = jwtKeysState(
      env,
      snapshot({ jwt: 'jwt-2' }, [key('jwt', 'jwt-2', 'active', { sealedSecret: sealed })]),
      'other',
      (kid) => unopened.push(kid),
    );
    expect(unopened).toEqual(['jwt-2']);
    expect(wrongWrap.activeKid).toBe('jwt-1');
  });

  it('lets a token keyring follow a live view: new tokens carry the new kid, tokens of the old kid verify until it is removed', () => {
    const base = { issuer: 'patchproof', audience: 'patchproof-api', svdSessionTtlSec: 600, emailTokenTtlSec: 900 };
    let state: { keys: Record<string, string>; activeKid: string } = {
      keys: { 'jwt-1': 'secret-one-0123456789abcdef0123456789' },
      activeKid: 'jwt-1',
    };
    const keyring = createTokenKeyring({ ...base, ...state }, 0, Date.now, () => state);
    const old = keyring.issue({ type: 'svd-session', userId: '64b7f0c2a1b2c3d4e5f60718', jti: 'a' }).token;
    state = { keys: { ...state.keys, 'jwt-2': 'secret-two-0123456789abcdef0123456789' }, activeKid: 'jwt-2' };
    const fresh = keyring.issue({ type: 'svd-session', userId: '64b7f0c2a1b2c3d4e5f60718', jti: 'b' }).token;
    expect(keyring.activeKid).toBe('jwt-2');
    expect(jwt.decode(fresh, { complete: true })?.header.kid).toBe('jwt-2');
    expect(keyring.verify(old, 'svd-session').kid).toBe('jwt-1');
    state = { keys: { 'jwt-2': state.keys['jwt-2']! }, activeKid: 'jwt-2' };
    expect(() => keyring.verify(old, 'svd-session')).toThrow('The bearer token is not valid.');
    expect(keyring.verify(fresh, 'svd-session').kid).toBe('jwt-2');
  });

  it('names one rotation workflow per purpose', () => {
    expect(kmsRotationWorkflowId('funding')).toBe('kms-rotation-funding');
    expect(isRotationWorkflowId('kms-rotation-svd')).toBe(true);
    expect(isRotationWorkflowId('jwt-rotation')).toBe(true);
    expect(isRotationWorkflowId('kms-rotation-other')).toBe(false);
    expect(() => kmsRotationWorkflowId('other' as never)).toThrow(RangeError);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PrivateKey } from '@bsv/sdk';
import { createDevKms, type DevKms } from '../../../ops/stand-ins/dev-kms/server';
import { loadConfig } from '../../../src/config';
import { createKmsClient, type KmsClient } from '../../../src/kms/client';
import { PoolMisconfiguredError, verifyFundingPublicKey } from '../../../src/pool/accounts';
import { listen, type Listening } from '../../support/http';

const KMS_KEY = 'funding-pubkey-test-kms-key-0123456789';

/** FUNDING_PUBKEY_HEX (runbook: "33-byte compressed SEC hex for migrations") against the dev KMS on a real socket. */
describe('FUNDING_PUBKEY_HEX cross-check', () => {
  let dataDir: string;
  let devKms: DevKms;
  let server: Listening;
  let kms: KmsClient;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'funding-pubkey-kms-'));
    devKms = createDevKms({ dataDir, apiKey: KMS_KEY, keys: ['funding', 'funding-other'] });
    server = await listen(devKms.app);
    kms = createKmsClient({ baseUrl: server.baseUrl, apiKey: KMS_KEY, timeoutMs: 5_000, retryAttempts: 1 });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const poolWith = (env: Record<string, string>) =>
    loadConfig({ KMS_SIGN_URL: server.baseUrl, KMS_API_KEY: KMS_KEY, UTXO_FUNDING_KEY_IDENTIFIER: 'funding', ...env }).pool;

  it('is skipped when the variable is unset', async () => {
    await expect(verifyFundingPublicKey(poolWith({}), kms)).resolves.toBe(false);
  });

  it('passes when the KMS serves the pinned key, in either hex case', async () => {
    const served = devKms.keys.describe('funding').pubKeyHex;
    await expect(verifyFundingPublicKey(poolWith({ FUNDING_PUBKEY_HEX: served }), kms)).resolves.toBe(true);
    await expect(verifyFundingPublicKey(poolWith({ FUNDING_PUBKEY_HEX: served.toUpperCase() }), kms)).resolves.toBe(true);
  });

  it('refuses a KMS that serves another key under the funding identifier', async () => {
    const other = PrivateKey.fromRandom().toPublicKey().toString();
    const check = verifyFundingPublicKey(poolWith({ FUNDING_PUBKEY_HEX: other }), kms);
    await expect(check).rejects.toBeInstanceOf(PoolMisconfiguredError);
    await expect(check).rejects.toThrow(/FUNDING_PUBKEY_HEX .* but the KMS serves .* for funding key funding/);
  });

  it('checks the configured identifier, so a pin of one key fails against another', async () => {
    const pinned = devKms.keys.describe('funding').pubKeyHex;
    await expect(
      verifyFundingPublicKey(poolWith({ FUNDING_PUBKEY_HEX: pinned, UTXO_FUNDING_KEY_IDENTIFIER: 'funding-other' }), kms),
    ).rejects.toBeInstanceOf(PoolMisconfiguredError);
  });
});

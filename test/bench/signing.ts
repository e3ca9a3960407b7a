/**
 * Build+sign benchmark through the dev KMS over HTTP: an anchor (1 input, OP_RETURN + change), a split
 * (1 input, 1000 outputs) and a sweep (100 inputs, 1 output). Each is signed with ONE KMS request per
 * transaction and, beside it in the same run, with one request per input (what an SDK template signer does).
 * Run: npx tsx test/bench/signing.ts [rounds]
 */
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { P2PKH, PrivateKey, PublicKey } from '@bsv/sdk';
import { createDevKms } from '../../ops/stand-ins/dev-kms/server';
import { signTransaction, type DigestSigner } from '../../src/chain/signing';
import { buildTransaction, type PlannedOutput, type SpendableOutput } from '../../src/chain/transactions';
import { createKmsClient } from '../../src/kms/client';

const rounds = Number(process.argv[2] ?? 5);

async function main(): Promise<void> {
  const { app } = createDevKms({
    dataDir: mkdtempSync(path.join(tmpdir(), 'bench-kms-')),
    apiKey: 'bench-key',
    highSRate: 0.25,
    keys: ['funding'],
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kms = createKmsClient({ baseUrl, apiKey: 'bench-key', timeoutMs: 30_000, retryAttempts: 1 });

  let requests = 0;
  const batched: DigestSigner = { verifiesSignatures: true, sign: (r) => (requests++, kms.sign(r)) };
  const perInput: DigestSigner = {
    verifiesSignatures: true,
    sign: async (r) => (await Promise.all(r.map((one) => (requests++, kms.sign([one]))))).map((answers) => answers[0]!),
  };

  const funding = await kms.publicKey('funding');
  // Outputs locked to the funding key's hash, so the KMS key really owns what the transactions spend.
  const lockingScriptHex = new P2PKH().lock(PublicKey.fromString(funding.pubKeyHex).toHash()).toHex();
  const input = (vout: number, satoshis: number): SpendableOutput => ({
    txid: 'ab'.repeat(32),
    vout,
    satoshis,
    lockingScriptHex,
    keyIdentifier: 'funding',
  });
  const dest = PrivateKey.fromRandom().toPublicKey().toAddress('testnet');
  const scenarios: { name: string; inputs: SpendableOutput[]; outputs: PlannedOutput[] }[] = [
    { name: 'anchor 1-in/2-out', inputs: [input(0, 10_000)], outputs: [{ kind: 'data', pushes: [new Array<number>(32).fill(1)] }] },
    {
      name: 'split 1-in/1000-out',
      inputs: [input(0, 5_000_000)],
      outputs: Array.from({ length: 999 }, () => ({ kind: 'p2pkh' as const, address: dest, satoshis: 1_000 })),
    },
    {
      name: 'sweep 100-in/1-out',
      inputs: Array.from({ length: 100 }, (_, i) => input(i, 500)),
      outputs: [{ kind: 'p2pkh', address: dest, satoshis: 40_000 }],
    },
  ];

  process.stdout.write(`rounds per scenario: ${rounds}\n`);
  process.stdout.write('scenario               | one request/tx: ms/tx  req/tx | one request/input: ms/tx  req/tx | speed-up\n');
  for (const scenario of scenarios) {
    const measure = async (signer: DigestSigner) => {
      requests = 0;
      const started = performance.now();
      for (let i = 0; i < rounds; i++) {
        const unsigned = buildTransaction({
          inputs: scenario.inputs,
          outputs: scenario.outputs,
          changeAddress: dest,
          minChangeSats: 546,
          feeRateSatPerKb: 100,
          network: 'test',
        });
        await signTransaction(unsigned, signer);
      }
      return { msPerTx: (performance.now() - started) / rounds, requestsPerTx: requests / rounds };
    };
    await measure(batched); // warm-up
    const one = await measure(batched);
    const many = await measure(perInput);
    process.stdout.write(
      `${scenario.name.padEnd(22)} | ${one.msPerTx.toFixed(1).padStart(21)} ${one.requestsPerTx.toFixed(0).padStart(7)} | ${many.msPerTx.toFixed(1).padStart(24)} ${many.requestsPerTx.toFixed(0).padStart(7)} | ${(many.msPerTx / one.msPerTx).toFixed(2)}x\n`,
    );
  }
  server.close();
}

void main();

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Beef } from '@bsv/sdk';
import { headersFileSource, parseHeadersFile } from '../../../src/chain/headerSources';
import { checkProofBundle, type ProofBundle } from '../../../src/registration/proofBundle';
import { independentVerifierImports, runIndependentVerifier } from '../../support/independentVerifier';
import { flipByte, proofFixture } from '../../support/proofFixtures';

describe('the independent verifier (test/independent-verifier/verify.mjs)', () => {
  it("imports nothing but Node's built-in modules", () => {
    const imports = independentVerifierImports();
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((name) => !name.startsWith('node:'))).toEqual([]);
  });

  it('agrees with checkProofBundle on synthetic bundles: authentic, incomplete without headers, and each kind of tampering', async () => {
    const fixture = proofFixture({ uid: 'IND-1' });
    const { v2 } = fixture;
    const anchored = (anchor: Partial<ProofBundle['anchor']>): ProofBundle => ({ ...v2, anchor: { ...v2.anchor, ...anchor } });
    const bumpNode = Beef.fromString(v2.anchor.beef!).bumps[0]!.path[1]![0]!.hash!;
    const nodeAt = v2.anchor.beef!.indexOf(Buffer.from(bumpNode, 'hex').reverse().toString('hex'));
    const bundles: Record<string, ProofBundle> = {
      authentic: v2,
      beefByte: anchored({ beef: flipByte(v2.anchor.beef!, -3) }),
      bumpHash: anchored({ beef: flipByte(v2.anchor.beef!.slice(0, nodeAt + 2), -1) + v2.anchor.beef!.slice(nodeAt + 2) }),
      header: anchored({ blockHeader: flipByte(v2.anchor.blockHeader!, 50) }),
      record: { ...v2, record: { ...v2.record, uid: 'IND-2' }, uid: 'IND-2' },
    };
    const dir = mkdtempSync(path.join(tmpdir(), 'independent-'));
    const headersFile = path.join(dir, 'headers.json');
    writeFileSync(headersFile, JSON.stringify(fixture.headersFile));
    const files = Object.entries(bundles).map(([name, bundle]) => {
      const file = path.join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(bundle));
      return file;
    });
    const withHeaders = await runIndependentVerifier(['--headers', headersFile, ...files]);
    const headers = headersFileSource(parseHeadersFile(fixture.headersFile), headersFile);
    const ours = await Promise.all(Object.values(bundles).map((b) => checkProofBundle(b, { headers, requiredConfirmations: 1 })));
    expect(withHeaders.verdicts.map((v) => v.status)).toEqual(ours.map((v) => v.status));
    expect(ours.map((v) => v.status)).toEqual(['authentic', 'invalid', 'invalid', 'invalid', 'invalid']);
    expect(withHeaders.code).toBe(1);

    const alone = await runIndependentVerifier([files[0]!]);
    expect(alone).toMatchObject({ code: 5, verdicts: [{ status: 'incomplete', unchecked: [expect.stringMatching(/no headers given/)] }] });
    expect(await checkProofBundle(v2, { requiredConfirmations: 1 })).toMatchObject({ status: 'incomplete' });
  });
});
